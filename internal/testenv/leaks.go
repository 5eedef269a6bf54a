package testenv

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Leaks returns the forms of secret found in s: as text, base64, or as
// fmt prints a []byte (%v and %#v). Tests that prove secrets stay out of
// logs, errors and files (soak, csi) check every output with it.
func Leaks(s string, secret string) []string {
	var found []string
	forms := map[string]string{
		"text": secret, "base64": base64.StdEncoding.EncodeToString([]byte(secret)),
		"%v bytes": strings.Trim(fmt.Sprint([]byte(secret)), "[]"), "%#v bytes": strings.TrimPrefix(fmt.Sprintf("%#v", []byte(secret)), "[]byte"),
	}
	for name, f := range forms {
		if strings.Contains(s, f) {
			found = append(found, name)
		}
	}
	return found
}

package sftp

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// redactedSecret replaces inline secrets when a Config is printed.
const redactedSecret = "<redacted>"

// plainConfig is Config without its methods, so printing it does not
// recurse into Format.
type plainConfig Config

// redacted returns a copy whose inline secrets (Password, IdentityInline)
// are replaced; the caller's slices are not touched.
func (c Config) redacted() plainConfig {
	if len(c.Password) > 0 {
		c.Password = []byte(redactedSecret)
	}
	if len(c.IdentityInline) > 0 {
		ids := make([][]byte, len(c.IdentityInline))
		for i := range ids {
			ids[i] = []byte(redactedSecret)
		}
		c.IdentityInline = ids
	}
	return plainConfig(c)
}

// Format prints the Config with inline secrets redacted, for every verb,
// so that a panic value, an error wrapping it or a careless log line
// (including when it is a field of a larger struct) cannot show them.
func (c Config) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), c.redacted())
}

// LogValue redacts the Config for log/slog handlers.
func (c Config) LogValue() slog.Value {
	return slog.StringValue(fmt.Sprintf("%+v", c.redacted()))
}

// MarshalJSON redacts the Config for encoding/json (slog's JSON handler
// marshals a struct holding a Config this way).
func (c Config) MarshalJSON() ([]byte, error) {
	r := c.redacted()
	r.Logger = nil
	return json.Marshal(r)
}

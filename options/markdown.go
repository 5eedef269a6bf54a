package options

import (
	"fmt"
	"strings"
)

// README markers between which Markdown's output is kept.
const (
	MarkerBegin = "<!-- options:begin -->"
	MarkerEnd   = "<!-- options:end -->"
)

// groupTitles gives the order and headings of groups in Markdown.
func groupTitles() [][2]string {
	return [][2]string{
		{GroupConnection, "Connection"},
		{GroupAuth, "Authentication"},
		{GroupHostKey, "Host keys"},
		{GroupFS, "File system"},
		{GroupLocal, "Local backend"},
		{GroupDebug, "Debugging"},
	}
}

// Markdown renders the option table, one table per group, for the
// README (between MarkerBegin and MarkerEnd) and `sftpfs help`.
func Markdown() string {
	var b strings.Builder
	b.WriteString("<!-- Generated from options.Table(); edit options/table.go and run `go test ./options -run README -update`. -->\n")
	for _, g := range groupTitles() {
		fmt.Fprintf(&b, "\n**%s**\n\n", g[1])
		b.WriteString("| Option | Type | Default | Where | Description |\n")
		b.WriteString("|---|---|---|---|---|\n")
		for _, o := range Table() {
			if o.Group != g[0] {
				continue
			}
			name := "`" + o.Name + "`"
			if len(o.Aliases) > 0 {
				name += " (alias " + "`" + strings.Join(o.Aliases, "`, `") + "`)"
			}
			def := ""
			if o.Default != "" {
				def = "`" + o.Default + "`"
			}
			if o.DefaultVolume != "" {
				def += " (mount), `" + o.DefaultVolume + "` (volume)"
			}
			kind := o.Kind.String()
			if o.Values != nil {
				kind = "`" + strings.Join(o.Values, "` \\| `") + "`"
			}
			help := o.Help
			if o.Secret {
				help = "**Secret.** " + help
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, kind, def, o.Scope, strings.ReplaceAll(help, "|", "\\|"))
		}
	}
	return b.String()
}

// Text renders the option table as plain text for `sftpfs help`.
func Text() string {
	var b strings.Builder
	for _, g := range groupTitles() {
		fmt.Fprintf(&b, "\n%s:\n", g[1])
		for _, o := range Table() {
			if o.Group != g[0] {
				continue
			}
			head := o.Name + "=" + o.Kind.String()
			if o.Values != nil {
				head = o.Name + "=" + strings.Join(o.Values, "|")
			}
			if o.Default != "" {
				head += " (default " + o.Default
				if o.DefaultVolume != "" {
					head += " for mount, " + o.DefaultVolume + " for volumes"
				}
				head += ")"
			}
			if o.Scope != ScopeBoth {
				head += " [" + o.Scope.String() + " only]"
			}
			fmt.Fprintf(&b, "  %s\n      %s\n", head, strings.ReplaceAll(o.Help, "`", ""))
		}
	}
	return b.String()
}

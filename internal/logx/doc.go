// Package logx holds the logging pieces shared by the plugin, the mount
// command and the backends: a slog.Handler whose level can change while the
// process runs and be lowered for one volume (the `debug` volume option),
// and Every, which bounds how often a repeating event is logged.
//
// There is no package-level logger: every component gets a *slog.Logger
// handed down (driver -> mounter -> fusefs and backend), carrying the
// volume's name as an attribute.
package logx

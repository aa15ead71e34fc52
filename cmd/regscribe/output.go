package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// outputFormat is a command's --format: text for people, json for tools.
// oras (1.2+) spells JSON output --format json; --json is the older
// spelling, kept as an alias.
type outputFormat string

// The output formats.
const (
	formatText outputFormat = "text"
	formatJSON outputFormat = "json"
)

func (f *outputFormat) String() string { return string(*f) }

// Set takes json or text.
func (f *outputFormat) Set(s string) error {
	switch v := outputFormat(s); v {
	case formatText, formatJSON:
		*f = v
		return nil
	}
	return fmt.Errorf("want json or text")
}

// Type is what the help shows after --format.
func (f *outputFormat) Type() string { return "json|text" }

// jsonAlias is --json: --json and --json=true mean --format json,
// --json=false means --format text.
type jsonAlias struct{ f *outputFormat }

func (j jsonAlias) String() string { return strconv.FormatBool(*j.f == formatJSON) }

func (j jsonAlias) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*j.f = formatText
	if b {
		*j.f = formatJSON
	}
	return nil
}

// Type "bool" shows --json without a value in the help.
func (j jsonAlias) Type() string { return "bool" }

// addFormatFlags adds --format and its alias --json to flags (cmd's own or
// persistent flags), writing to f; what says what JSON output is.
func addFormatFlags(cmd *cobra.Command, flags *pflag.FlagSet, f *outputFormat, what string) {
	*f = formatText
	flags.Var(f, "format", "output format: text, or json ("+what+")")
	flags.Var(jsonAlias{f}, "json", "same as --format json")
	flags.Lookup("json").NoOptDefVal = "true"
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "%s\n", b)
}

// writeIndented writes v as indented JSON.
func writeIndented(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

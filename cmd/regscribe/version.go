package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…"; it takes
// the place of the module version from the build information.
var version = ""

// versionInfo is what `regscribe version` prints, from the build
// information Go embeds in every binary.
type versionInfo struct {
	// Version is the module version: v1.2.3 for `go install …@v1.2.3`, a
	// pseudo-version (v0.0.0-20261127204107-0123456789ab, +dirty with
	// uncommitted changes) for `go build` in a checkout, "(devel)" when Go
	// knew none.
	Version string `json:"version"`
	// Revision is the VCS commit a checkout was built from.
	Revision string `json:"revision,omitempty"`
	// Time is the commit's time (RFC 3339).
	Time string `json:"time,omitempty"`
	// Modified is true when the checkout had uncommitted changes.
	Modified bool `json:"modified"`
	// Go is the Go version that built the binary.
	Go string `json:"go"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

func readBuildInfo() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
}

// versionOf reads bi (nil: no build information).
func versionOf(bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: "(devel)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			v.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		v.Version = version
	}
	return v
}

// Short is the version in one word, for the User-Agent and --version: the
// module version, else the revision, else "dev".
func (v versionInfo) Short() string {
	switch {
	case v.Version != "(devel)":
		return v.Version
	case v.Revision != "":
		rev := v.Revision[:min(12, len(v.Revision))]
		if v.Modified {
			rev += "+dirty"
		}
		return "dev-" + rev
	}
	return "dev"
}

// buildVersion is this binary's version in one word.
func buildVersion() string { return versionOf(readBuildInfo()).Short() }

func (v versionInfo) write(w io.Writer, format outputFormat) {
	if format == formatJSON {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintf(w, "regscribe %s\n", v.Version)
	if v.Revision != "" {
		modified := ""
		if v.Modified {
			modified = " (modified)"
		}
		fmt.Fprintf(w, "  revision   %s%s\n", v.Revision, modified)
	}
	if v.Time != "" {
		fmt.Fprintf(w, "  committed  %s\n", v.Time)
	}
	fmt.Fprintf(w, "  go         %s %s\n", v.Go, v.Platform)
}

func (c *cli) versionCmd() *cobra.Command {
	var format outputFormat
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, the VCS revision and the Go version",
		Long: `Prints the module version (v1.2.3 for go install …@v1.2.3; a pseudo-version
for go build in a checkout), the VCS revision it was built from, whether the
checkout had uncommitted changes, and the Go version.`,
		Example: `  regscribe version
  regscribe version --format json`,
		GroupID:           groupTools,
		Args:              argsBetween(0, 0, "no arguments"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			versionOf(readBuildInfo()).write(c.stdout, format)
			return nil
		},
	}
	addFormatFlags(cmd, cmd.Flags(), &format, "one JSON object")
	return cmd
}

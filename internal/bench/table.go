package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Target is one of issue 8's targets, judged against a report.
type Target struct {
	What   string `json:"what"`
	Target string `json:"target"`
	Value  string `json:"value"`
	Met    bool   `json:"met"`
}

// Targets judges the report against the targets the figures were asked to
// meet; a target whose section did not run is left out.
func (rep Report) Targets() []Target {
	var out []Target
	if t := rep.Throughput; t != nil {
		out = append(out, Target{
			What:   fmt.Sprintf("throughput / ceiling C/L (%d × %s, L = %v ms, C = %d)", t.Photos, t.Kind, rep.Settings.LatencyMs, rep.Settings.Concurrency),
			Target: "≥ 0.95", Value: fmt.Sprintf("%.3f", t.Ratio), Met: t.Ratio >= 0.95,
		})
	}
	if l := rep.Latency; l != nil {
		out = append(out, Target{What: "latency regscribe adds (less the fake model's own time), p95", Target: "≤ 30 ms",
			Value: fmt.Sprintf("%.1f ms", l.OwnP95Ms), Met: l.OwnP95Ms <= 30})
	}
	if m := rep.Memory; m != nil {
		out = append(out, Target{
			What:   fmt.Sprintf("peak RSS, %d × %s, %d jobs in flight, C = %d", m.Photos, m.Kind, m.Workers, rep.Settings.Concurrency),
			Target: "≤ 200 MB", Value: fmt.Sprintf("%.0f MB", m.PeakRSSMB), Met: m.PeakRSSMB <= 200,
		})
	}
	if sr := rep.Search; sr != nil {
		out = append(out,
			Target{What: fmt.Sprintf("search: indexing from the stream, %d photos", sr.Photos), Target: "≥ 5000 photos/s",
				Value: fmt.Sprintf("%.0f photos/s", sr.IndexPerSecond), Met: sr.IndexPerSecond >= 5000},
			Target{What: "search: text query p95", Target: "≤ 20 ms", Value: fmt.Sprintf("%.1f ms", sr.TextP95Ms), Met: sr.TextP95Ms <= 20},
			Target{What: "search: hybrid query p95", Target: "≤ 50 ms", Value: fmt.Sprintf("%.1f ms", sr.HybridP95Ms), Met: sr.HybridP95Ms <= 50},
			Target{What: "search: memory the index and vectors add (Go heap)", Target: "≤ 150 MB", Value: fmt.Sprintf("%.0f MB", sr.HeapMB), Met: sr.HeapMB <= 150},
		)
	}
	if rep.Ingest != nil && rep.Throughput != nil && rep.Latency != nil && rep.CPU != nil && rep.Memory != nil && rep.Demo != nil {
		out = append(out, Target{What: "whole run", Target: "< 5 min", Value: fmt.Sprintf("%.0f s", rep.Seconds), Met: rep.Seconds < 300})
	}
	return out
}

const loadLabel = "cores busy: this process + fake model + other programs"

// String is the load in cores, of the machine's cores.
func (l Load) String(cores int) string {
	return fmt.Sprintf("%.2f + %.2f + %.2f of %d", l.Bench, l.Model, l.Other, cores)
}

// WriteTable writes the report as a table, followed by the targets.
func WriteTable(w io.Writer, rep Report) error {
	m, s := rep.Machine, rep.Settings
	fmt.Fprintf(w, "machine:   %d × %s (GOMAXPROCS %d), %d GiB, %s, %s; load average at start %s\n",
		m.Cores, m.CPU, m.GOMAXPROCS, m.MemoryGiB, m.OS, m.Go, m.LoadAverage)
	fmt.Fprintf(w, "model:     fake Ollama, L = %v ms, C = %d: ceiling C/L = %.1f photos/s; %s\n", s.LatencyMs, s.Concurrency, s.Ceiling, s.Model)
	fmt.Fprintf(w, "regscribe: as `regscribe up` runs it, in this process, registry storage %s; %d jobs in flight; photos pushed as `oras push` does, %d at a time\n\n",
		s.Storage, s.Workers, s.Pushers)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(section, what, value string) { fmt.Fprintf(tw, "%s\t%s\t%s\n", section, what, value) }
	row("SECTION", "FIGURE", "VALUE")
	if g := rep.Ingest; g != nil {
		row("ingest", fmt.Sprintf("notifier → JetStream (file), %d clients at once", g.Clients), fmt.Sprintf("%.0f events/s", g.PerSecond))
		row("", "one client, one event at a time (as one Distribution endpoint sends)", fmt.Sprintf("%.0f events/s", g.SequentialPerSecond))
		row("", "events posted / jobs stored", fmt.Sprintf("%d / %d", g.Events+g.SequentialEvents, g.Stored))
	}
	if t := rep.Throughput; t != nil {
		row("throughput", fmt.Sprintf("%d × %s pushed live, %d at a time", t.Photos, t.Kind.Describe(), t.Pushers),
			fmt.Sprintf("%.2f s (pushes done at %.2f s)", t.Seconds, t.PushSeconds))
		row("", "photos/s, first push to last description", fmt.Sprintf("%.1f of %.1f", t.PerSecond, s.Ceiling))
		row("", "ratio to the ceiling C/L", fmt.Sprintf("%.3f", t.Ratio))
		row("", "push done → job queued (the registry's notification), p50 / p95", fmt.Sprintf("%.1f / %.1f ms", t.NotifyP50Ms, t.NotifyP95Ms))
		row("", "model calls / most served at once", fmt.Sprintf("%d / %d", t.ModelCalls, t.MaxServed))
		row("", "jobs: described / skipped / failed", fmt.Sprintf("%d / %d / %d", t.Jobs.Described, t.Jobs.Skipped, t.Jobs.Failed))
		row("", loadLabel, t.Load.String(m.Cores))
	}
	if l := rep.Latency; l != nil {
		row("latency", fmt.Sprintf("added per photo (result − push − L), %d × %s, %d at a time", l.Photos, l.Kind, l.AtOnce),
			fmt.Sprintf("p50 %.1f / p95 %.1f / p99 %.1f / max %.1f ms", l.P50Ms, l.P95Ms, l.P99Ms, l.MaxMs))
		row("", "of which push done → job queued (the registry's notification), p50 / p95",
			fmt.Sprintf("%.1f / %.1f ms", l.NotifyP50Ms, l.NotifyP95Ms))
		row("", "the fake model's own time per call beyond L (its server, not regscribe)", fmt.Sprintf("%.1f ms", l.ModelServerMs))
		row("", "added by regscribe: the above less the fake model's own time, p50 / p95", fmt.Sprintf("%.1f / %.1f ms", l.OwnP50Ms, l.OwnP95Ms))
		var stages []string
		for _, st := range []string{"fetch", "prepare", "model", "write"} {
			if v, ok := l.StageMs[st]; ok {
				stages = append(stages, fmt.Sprintf("%s %.1f", st, v))
			}
		}
		row("", "worker stages, mean ms (model includes L)", strings.Join(stages, " / "))
		row("", loadLabel, l.Load.String(m.Cores))
	}
	for i, c := range rep.CPU {
		section := ""
		if i == 0 {
			section = "cpu"
		}
		row(section, fmt.Sprintf("%d × %s: CPU ms per photo, push / describe / total", c.Photos, c.Kind.Describe()),
			fmt.Sprintf("%.1f / %.1f / %.1f ms", c.PushMs, c.DescribeMs, c.TotalMs))
		row("", fmt.Sprintf("  described at (after pushing all %d)", c.Photos), fmt.Sprintf("%.1f photos/s", c.DescribePerSecond))
		row("", "  "+loadLabel, c.Load.String(m.Cores))
	}
	if mem := rep.Memory; mem != nil {
		where := "in this process"
		if mem.FreshProcess {
			where = "in a fresh process"
		}
		row("memory", fmt.Sprintf("peak RSS describing %d × %s, %d in flight (%s)", mem.Photos, mem.Kind.Describe(), mem.Workers, where), fmt.Sprintf("%.0f MB", mem.PeakRSSMB))
		row("", "RSS as describing started / peak Go heap / whole-run peak RSS",
			fmt.Sprintf("%.0f / %.0f / %.0f MB", mem.BaselineRSSMB, mem.PeakHeapMB, mem.WholeRunPeakRSSMB))
	}
	if d := rep.Demo; d != nil {
		row("demo", fmt.Sprintf("%d × %s described in the notification request, one at a time", d.Photos, d.Kind),
			fmt.Sprintf("%.2f photos/s (%.1f s)", d.PerSecond, d.Seconds))
		if d.Speedup > 0 {
			row("", "regscribe's throughput ÷ the demo's", fmt.Sprintf("%.1f×", d.Speedup))
		}
	}
	if sr := rep.Search; sr != nil {
		row("search", fmt.Sprintf("%d descriptions indexed from the stream (bleve, text only)", sr.Photos),
			fmt.Sprintf("%.0f photos/s (%.1f s; publishing took %.1f s)", sr.IndexPerSecond, sr.IndexSeconds, sr.PublishSeconds))
		row("", "  "+loadLabel, sr.IndexLoad.String(m.Cores))
		row("", fmt.Sprintf("text query, p50 / p95 (%d queries)", sr.Queries), fmt.Sprintf("%.1f / %.1f ms", sr.TextP50Ms, sr.TextP95Ms))
		row("", "the same as a naive scan (strings.Contains), p50 / p95", fmt.Sprintf("%.1f / %.1f ms", sr.ScanP50Ms, sr.ScanP95Ms))
		if sr.TextP50Ms > 0 {
			row("", "naive scan ÷ index, p50", fmt.Sprintf("%.0f×", sr.ScanP50Ms/sr.TextP50Ms))
		}
		row("", fmt.Sprintf("every description embedded (fake embedder, %d dims, over HTTP) and remembered", sr.EmbedDims),
			fmt.Sprintf("%.0f photos/s (%.1f s)", sr.EmbedPerSecond, sr.EmbedSeconds))
		row("", "hybrid query (text + vectors, query embedded), p50 / p95", fmt.Sprintf("%.1f / %.1f ms", sr.HybridP50Ms, sr.HybridP95Ms))
		row("", "memory the open index and its vectors hold (open − closed): Go heap / RSS", fmt.Sprintf("%.0f / %.0f MB", sr.HeapMB, sr.RSSMB))
		row("", "index on disk per photo", fmt.Sprintf("%.0f bytes", sr.DiskBytesPerPhoto))
	}
	row("run", "wall time", fmt.Sprintf("%.0f s", rep.Seconds))
	if err := tw.Flush(); err != nil {
		return err
	}

	targets := rep.Targets()
	if len(targets) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "TARGET\tWANTED\tMEASURED\tMET\n")
	for _, t := range targets {
		met := "no"
		if t.Met {
			met = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.What, t.Target, t.Value, met)
	}
	return tw.Flush()
}

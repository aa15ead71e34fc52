//go:build !linux

package bench

import "time"

// On systems other than Linux the benchmark runs, but reports no CPU time
// and no memory figures.

func cpuTime() time.Duration               { return 0 }
func memoryStatus() (rss, peak int64)      { return 0, 0 }
func resetPeakRSS() bool                   { return false }
func machineInfo() (string, int64, string) { return "", 0, "" }
func machineBusy() time.Duration           { return 0 }
func processCPU(int) time.Duration         { return 0 }

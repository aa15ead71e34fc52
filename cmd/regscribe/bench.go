package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/regscribe/regscribe/internal/bench"
	"github.com/regscribe/regscribe/internal/config"
)

// benchCmd runs `regscribe bench`, the pipeline benchmark (internal/bench).
// It reads no configuration: it starts its own parts, on loopback. The fake
// model and the memory measurement run in child processes of this binary.
func benchCmd(ctx context.Context, _ config.Config, args []string, stdout, stderr io.Writer, _ *slog.Logger) int {
	var self []string
	if exe, err := os.Executable(); err == nil {
		self = []string{exe, "bench"}
	}
	return bench.Main(ctx, self, args, stdout, stderr)
}

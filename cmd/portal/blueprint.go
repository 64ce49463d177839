package main

import (
	"context"
	"io"

	"portal/internal/blueprints"
)

func blueprintValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return blueprints.ValidateCommand(ctx, args, stdout, stderr)
}

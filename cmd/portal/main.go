// Command portal runs the portal and its scripting subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"portal/internal/app"
)

const usage = `Usage: portal <command> [flags]

Commands:
  serve                 run the portal (see portal serve -help)
  users add             create a staff account and print its one-time password
  audit verify          verify the audit trail's chain (and its anchors, with -anchor-bucket)
  audit rotate-key      add a new audit key; the trail is sealed with it from now on
  blueprint validate    validate blueprint files and their guardrails (exit 1 on any error)

Run portal <command> -help for a command's flags. The local sandbox, benchmarks
and soak are in the development binary, cmd/portal-dev.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch {
	case cmd == "serve":
		return serve(ctx, rest, stdout, stderr)
	case cmd == "users" && len(rest) > 0 && rest[0] == "add":
		return usersAdd(ctx, rest[1:], stdout, stderr)
	case cmd == "audit" && len(rest) > 0 && rest[0] == "verify":
		return auditVerify(ctx, rest[1:], stdout, stderr)
	case cmd == "audit" && len(rest) > 0 && rest[0] == "rotate-key":
		return auditRotateKey(ctx, rest[1:], stdout, stderr)
	case cmd == "blueprint" && len(rest) > 0 && rest[0] == "validate":
		return blueprintValidate(ctx, rest[1:], stdout, stderr)
	case cmd == "help" || cmd == "-h" || cmd == "-help" || cmd == "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "portal: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func report(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "portal: %v\n", err)
	return 1
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := app.ParseServe(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "portal serve: %v\n", err)
		return 2
	}
	log := app.NewLogger(cfg)
	a, err := app.New(ctx, cfg, log, app.Options{})
	if err != nil {
		return report(stderr, err)
	}
	defer a.Close()
	if a.FirstAdmin != nil {
		app.PrintFirstAdmin(stdout, a.BaseURL(), *a.FirstAdmin)
	}
	return report(stderr, a.Run(ctx))
}

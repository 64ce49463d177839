// Command portal-dev runs the portal on a local sandbox and drives load and
// fault tests against it. It links the test peers (moto, stripe-mock) and
// the load tools, which the production binary, cmd/portal, does not.
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

	"portal/internal/loadtest"
	"portal/internal/sandbox"
)

const usage = `Usage: portal-dev <command> [flags]

Commands:
  sandbox   run the portal on a local sandbox: moto, stripe-mock and SQLite under .sandbox/ (make run)
  bench     run the Go benchmarks and an HTTP load on a sandbox; report in reports/ (make bench)
  soak      mixed load, SIGKILL restarts, bad and repeated input on a sandbox; end-of-run checks (make soak)
  lb        a round-robin load balancer in front of several portal replicas, to try them on one machine
  load      signed-in clients on the pages of a running portal (replicas behind lb too): latencies and peak RSS

Run portal-dev <command> -help for a command's flags. The production binary is
cmd/portal (portal serve).
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
	switch cmd {
	case "sandbox":
		err := sandbox.Run(ctx, rest, stdout, stderr)
		if err == nil || errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "portal-dev: %v\n", err)
		return 1
	case "bench":
		return loadtest.BenchCommand(ctx, rest, stdout, stderr)
	case "soak":
		return loadtest.SoakCommand(ctx, rest, stdout, stderr)
	case "lb":
		return loadtest.BalancerCommand(ctx, rest, stdout, stderr)
	case "load":
		return loadtest.LoadCommand(ctx, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "portal-dev: unknown command %q\n\n%s", cmd, usage)
	return 2
}

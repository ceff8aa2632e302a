// Command credpool runs a pool of API keys from the command line: a reverse
// proxy that puts a key from the pool on every request it forwards, a check
// of which keys are ok, and a demo against a simulated provider.
//
// Usage:
//
//	credpool proxy --upstream URL [flags]   serve the pool as a reverse proxy
//	credpool check --base-url URL [flags]   send one cheap request per key
//	credpool demo [--html FILE] [--live]    a simulated day: a naive pool against credpool
//	credpool help [command]                 show help
//
// Keys are read from a file (--keys-file) or an environment variable
// (--keys-env, CREDPOOL_KEYS by default), one per line or comma-separated,
// never from the command line, where ps shows them to every user.
//
// The exit status is 0 on success, 1 when the command failed, and 2 when it
// was called wrongly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// The exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is a subcommand.
type command struct {
	name    string
	summary string
	flags   func() *flag.FlagSet // for help: the command's flags and usage
	run     func(ctx context.Context, out output, args []string) error
}

// output is where a command writes: results to stdout, logs and errors to
// stderr.
type output struct {
	stdout, stderr io.Writer
}

// commands lists the subcommands in the order help shows them.
func commands() []command {
	return []command{
		{"proxy", "serve the pool as a reverse proxy, with a status page and metrics",
			func() *flag.FlagSet { fs, _ := proxyFlags(); return fs }, runProxy},
		{"check", "send one cheap request with each key and tell which are ok, exhausted or dead",
			func() *flag.FlagSet { fs, _ := checkFlags(); return fs }, runCheck},
		{"demo", "a simulated day through a naive pool and through credpool (no network, no keys)",
			func() *flag.FlagSet { fs, _ := demoFlags(); return fs }, runDemo},
	}
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	out := output{stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printHelp(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return help(out, rest)
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "credpool: unknown command %q\n\n", name)
		printHelp(stderr)
		return exitUsage
	}
	return exit(out, cmd, cmd.run(ctx, out, rest))
}

// exit reports a command's error and turns it into an exit status.
func exit(out output, cmd command, err error) int {
	var usage *usageError
	var status exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		printUsage(out.stdout, cmd)
		return exitOK
	case errors.As(err, &status):
		return int(status)
	case errors.As(err, &usage):
		fmt.Fprintf(out.stderr, "credpool %s: %s\nRun 'credpool help %s' for usage.\n", cmd.name, usage.msg, cmd.name)
		return exitUsage
	}
	// The library's errors start with "credpool: " too; once is enough.
	fmt.Fprintf(out.stderr, "credpool %s: %s\n", cmd.name, strings.TrimPrefix(err.Error(), "credpool: "))
	return exitFail
}

// help prints the overview, or one command's usage.
func help(out output, args []string) int {
	switch {
	case len(args) == 0:
		printHelp(out.stdout)
		return exitOK
	case len(args) > 1:
		fmt.Fprintln(out.stderr, "usage: credpool help [command]")
		return exitUsage
	}
	cmd, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(out.stderr, "credpool help: unknown command %q\n\n", args[0])
		printHelp(out.stderr)
		return exitUsage
	}
	printUsage(out.stdout, cmd)
	return exitOK
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// printHelp prints the overview of the commands.
func printHelp(w io.Writer) {
	fmt.Fprint(w, `credpool serves and checks a pool of API keys.

Usage:

	credpool <command> [flags]

Commands:

`)
	for _, c := range commands() {
		fmt.Fprintf(w, "	%-6s  %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'credpool help <command>' for a command's flags.

Keys come from a file (--keys-file) or an environment variable (--keys-env,
default CREDPOOL_KEYS), one per line or comma-separated; never from the
command line. Exit status: 0 success, 1 failure, 2 usage error.
`)
}

// printUsage prints one command's usage and flags.
func printUsage(w io.Writer, cmd command) {
	fs := cmd.flags()
	fs.SetOutput(w)
	fs.Usage()
}

// usageError is a command called wrongly: exit status 2.
type usageError struct{ msg string }

// Error implements error.
func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitStatus is an error that only sets the exit status: the command has
// already said what went wrong.
type exitStatus int

// Error implements error.
func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// newFlagSet returns a FlagSet for a command whose usage is synopsis followed
// by about and the flags. Parse errors are returned, not printed: exit
// reports them.
func newFlagSet(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("credpool "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: credpool %s %s\n\n%s\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args into fs. A command takes no arguments besides its flags;
// one left over is refused without being echoed, since it may be a key
// pasted where it does not belong.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument (%d left after the flags); keys are read from --keys-file or --keys-env, never from the command line", fs.NArg())
	}
	return nil
}

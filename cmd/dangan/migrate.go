package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// cmdMigrate is `dangan migrate --plan`: the documents whose archival copy the format
// policy (--format-policy) and the converters installed would now make differently; and
// `dangan migrate --run`, which gives each of their packages an amended current form.
func cmdMigrate(args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ExitOnError)
	var c commonFlags
	c.register(fs)
	plan := fs.Bool("plan", false, "list the documents the policy would now make differently, with counts and bytes")
	asJSON := fs.Bool("json", false, "the plan (or the run's outcome) as JSON")
	run := fs.Bool("run", false, "give every package with documents to make an amended (修改型) current form; resumes a run that stopped")
	rate := fs.Float64("rate", 0, "with --run: packages a second at most (0: no limit)")
	limit := fs.Int("limit", 0, "with --run: stop after this many packages (0: every one)")
	by := fs.String("by", "", "with --run: who ordered the migration, as the amendments record it (default: the administrator)")
	fs.Parse(args)
	if *plan == *run {
		return errors.New("usage: dangan migrate --plan|--run [--data DIR] [--format-policy FILE] [--rate N] [--limit N] [--by NAME] [--json]")
	}
	c.quietReconcile = true
	a, err := c.open()
	if err != nil {
		return fmt.Errorf("%w (stop 'dangan serve' first)", err)
	}
	defer a.Close()
	if *run {
		return runMigration(a, archive.MigrationOptions{Rate: *rate, Limit: *limit}, *by, *asJSON)
	}
	p, err := a.PlanMigration(context.Background(), archive.Principal{Role: archive.RoleAdmin}, func(done int) {
		fmt.Fprintf(os.Stderr, "\rmigrate: %d packages read", done)
	})
	if err != nil {
		return err
	}
	fmt.Fprint(os.Stderr, "\r")
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	fmt.Printf("%d packages, %d documents; %d groups made otherwise than the policy would make them now\n", p.Packages, p.Documents, len(p.Groups))
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "source\tmade\tnow\tdocuments\tpackages\tbytes")
	for _, g := range p.Groups {
		made := orDash(g.MadeTarget) + " " + orDash(g.MadeTool)
		now := orDash(g.Now.Target) + " " + orDash(g.Now.Tool)
		if !g.Migratable {
			now = "refused by the policy (" + g.Now.Rule + ")"
		}
		fmt.Fprintf(tw, "%s (%s)\t%s\t%s\t%d\t%d\t%d\n", g.SourcePUID, g.SourceName, made, now, g.Documents, g.Packages, g.Bytes)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// runMigration runs a migration with progress on stderr and prints what it did.
func runMigration(a *archive.Archive, opts archive.MigrationOptions, by string, asJSON bool) error {
	start := time.Now()
	opts.Progress = func(r *archive.MigrationRun) {
		fmt.Fprintf(os.Stderr, "\rmigrate: %d/%d packages, %d migrated, %d left as they were, %.1f MB written", r.Done, r.Total, r.Migrated, len(r.Failed), float64(r.Bytes)/1e6)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := a.RunMigration(ctx, archive.Principal{Role: archive.RoleAdmin, Name: by}, opts)
	fmt.Fprintln(os.Stderr)
	if r == nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(r); jerr != nil {
			return jerr
		}
	} else {
		fmt.Printf("%d packages migrated (%d completed from a run that stopped), %d documents, %d bytes in %s\n", r.Migrated, r.Resumed, r.Documents, r.Bytes, time.Since(start).Round(time.Millisecond))
		for _, f := range r.Failed {
			fmt.Printf("left as it was: %s (%s) document %d: %s\n", f.Package, f.ArchivalCode, f.Document, f.Reason)
		}
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("stopped: run 'dangan migrate --run' again to resume")
	}
	return err
}

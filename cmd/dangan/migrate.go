package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/dangan-archive/dangan/archive"
)

// cmdMigrate is `dangan migrate --plan`: the documents whose archival copy the format
// policy (--format-policy) and the converters installed would now make differently.
func cmdMigrate(args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ExitOnError)
	var c commonFlags
	c.register(fs)
	plan := fs.Bool("plan", false, "list the documents the policy would now make differently, with counts and bytes")
	asJSON := fs.Bool("json", false, "the plan as JSON")
	fs.Parse(args)
	if !*plan {
		return errors.New("usage: dangan migrate --plan [--data DIR] [--format-policy FILE] [--json]")
	}
	c.quietReconcile = true
	a, err := c.open()
	if err != nil {
		return fmt.Errorf("%w (stop 'dangan serve' first)", err)
	}
	defer a.Close()
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

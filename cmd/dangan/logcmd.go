package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/storage"
)

// cmdLog is "dangan log verify": replay the event log from the object store alone and
// check every root, checkpoint, token and cosignature. It reads only, so it runs beside a
// running server.
func cmdLog(args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: dangan log verify [--data DIR] [--s3-endpoint ...] [--roots ROOTS.pem] [--json]")
	}
	fs := flag.NewFlagSet("log verify", flag.ExitOnError)
	var c commonFlags
	c.register(fs)
	rootsFile := fs.String("roots", "", "PEM file of trusted roots (default: DIR/pki/root.pem and extra-roots.pem)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Parse(args[1:])
	var st storage.ObjectStore
	var err error
	if c.s3.Endpoint != "" {
		st, err = c.openS3()
	} else {
		st, err = storage.OpenFSShared(filepath.Join(c.data, "objects"))
	}
	if err != nil {
		return err
	}
	roots, err := loadRoots(*rootsFile, c.data)
	if err != nil {
		return err
	}
	start := time.Now()
	last := time.Time{}
	rep, err := eventlog.Audit(context.Background(), st, roots, func(n uint64) {
		if time.Since(last) > 300*time.Millisecond {
			fmt.Fprintf(os.Stderr, "\rlog verify: %d events replayed", n)
			last = time.Now()
		}
	})
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		fmt.Printf("log %s: %d events in %d bundles, %d checkpoints, %d cosignatures, root %s (%.1fs)\n",
			rep.Origin, rep.Events, rep.Bundles, rep.Checkpoints, rep.Cosignatures, rep.Root, time.Since(start).Seconds())
		for i, p := range rep.Problems {
			if i == 0 {
				fmt.Println("FIRST INCONSISTENCY:", p)
			} else {
				fmt.Println("  also:", p)
			}
		}
	}
	if !rep.OK() {
		return fmt.Errorf("the event log is not consistent: %d problems", len(rep.Problems))
	}
	fmt.Println("OK: every event, root, checkpoint, timestamp and cosignature verified")
	return nil
}

// loadRoots reads trusted roots from a PEM file, or from the data directory's PKI.
func loadRoots(file, data string) (*smx509.CertPool, error) {
	files := []string{file}
	if file == "" {
		files = []string{filepath.Join(data, "pki", "root.pem"), filepath.Join(data, "pki", "extra-roots.pem")}
	}
	var all []*smx509.Certificate
	for i, f := range files {
		certs, err := signing.LoadCerts(f)
		if errors.Is(err, os.ErrNotExist) && i > 0 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("trusted roots: %w", err)
		}
		all = append(all, certs...)
	}
	if len(all) == 0 {
		return nil, errors.New("no trusted roots")
	}
	return signing.NewPool(all...), nil
}

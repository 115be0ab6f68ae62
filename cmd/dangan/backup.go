package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/storage"
)

// backupStore is the other side of a backup: a directory or a MinIO bucket.
type backupStore struct {
	dir, endpoint, bucket string
	tls                   bool
}

func (b *backupStore) register(fs *flag.FlagSet, dir string) {
	fs.StringVar(&b.dir, dir, "", "backup directory")
	fs.StringVar(&b.endpoint, dir+"-s3-endpoint", "", "backup MinIO endpoint (credentials from DANGAN_BACKUP_S3_ACCESS_KEY/SECRET_KEY, else DANGAN_S3_…)")
	fs.StringVar(&b.bucket, dir+"-s3-bucket", "dangan-backup", "backup bucket")
	fs.BoolVar(&b.tls, dir+"-s3-tls", false, "HTTPS to the backup endpoint")
}

func (b *backupStore) open(ctx context.Context) (storage.ObjectStore, error) {
	switch {
	case b.dir != "" && b.endpoint != "":
		return nil, errors.New("give a backup directory or a backup endpoint, not both")
	case b.dir != "":
		return storage.OpenFS(b.dir)
	case b.endpoint != "":
		ak, sk := os.Getenv("DANGAN_BACKUP_S3_ACCESS_KEY"), os.Getenv("DANGAN_BACKUP_S3_SECRET_KEY")
		if ak == "" {
			ak, sk = os.Getenv("DANGAN_S3_ACCESS_KEY"), os.Getenv("DANGAN_S3_SECRET_KEY")
		}
		return storage.OpenS3(ctx, storage.S3Config{Endpoint: b.endpoint, Bucket: b.bucket, TLS: b.tls, AccessKey: ak, SecretKey: sk})
	}
	return nil, errors.New("no backup store given")
}

func progressLine(verb string) archive.BackupProgress {
	last := time.Time{}
	return func(done, total int, bytes int64) {
		if time.Since(last) > 300*time.Millisecond || done == total {
			fmt.Fprintf(os.Stderr, "\r%s: %d/%d objects, %d MiB", verb, done, total, bytes>>20)
			last = time.Now()
		}
	}
}

// cmdBackup copies what is new, with a consistent index snapshot, to a directory or bucket.
// The server must be stopped (the index is one process's).
func cmdBackup(args []string) error {
	fs := flag.NewFlagSet("backup", flag.ExitOnError)
	var c commonFlags
	c.register(fs)
	var to backupStore
	to.register(fs, "to")
	fs.Parse(args)
	ctx := context.Background()
	dst, err := to.open(ctx)
	if err != nil {
		return fmt.Errorf("usage: dangan backup --data DIR (--to DIR | --to-s3-endpoint HOST:PORT): %w", err)
	}
	c.quietReconcile = true
	a, err := c.open()
	if err != nil {
		return fmt.Errorf("%w (stop 'dangan serve' first)", err)
	}
	defer a.Close()
	rep, err := a.Backup(ctx, dst, progressLine("backup"))
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr)
	fmt.Printf("backup: %d objects copied (%d MiB), %d already there; index snapshot %s (%d packages)\n", rep.Copied, rep.Bytes>>20, rep.Skipped, rep.Snapshot, rep.Packages)
	return nil
}

// cmdRestore brings a fresh instance back from a backup.
func cmdRestore(args []string) error {
	fs := flag.NewFlagSet("restore", flag.ExitOnError)
	var c commonFlags
	c.register(fs)
	var from backupStore
	from.register(fs, "from")
	fs.Parse(args)
	ctx := context.Background()
	src, err := from.open(ctx)
	if err != nil {
		return fmt.Errorf("usage: dangan restore --data NEWDIR (--from DIR | --from-s3-endpoint HOST:PORT): %w", err)
	}
	var primary storage.ObjectStore
	if c.s3.Endpoint != "" {
		if primary, err = c.openS3(); err != nil {
			return err
		}
	} else if primary, err = storage.OpenFS(filepath.Join(c.data, "objects")); err != nil {
		return err
	}
	rep, err := archive.Restore(ctx, src, primary, c.data, progressLine("restore"))
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr)
	a, err := c.open() // reconciles what the snapshot does not know
	if err != nil {
		return err
	}
	n, _ := a.Index().Count()
	a.Close()
	fmt.Printf("restore: %d objects (%d MiB) into %s, index from %s: %d packages\n", rep.Copied, rep.Bytes>>20, c.data, rep.Snapshot, n)
	return nil
}

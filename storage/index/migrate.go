package index

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Version is the layout of the index this code reads and writes:
//
//	1  package records with their documents inline, one by-date list (until 2026-12)
//	2  compact records, documents apart, secondary indexes, statistics
//	3  secondary keys of a department only; the archive's lists merge the departments'
const Version = 3

const (
	versionKey   = "index-version"
	migrationKey = "index-migration" // the last package id a migration has done
)

var bByDateV1 = []byte("by-date")

// Options are what OpenWith needs besides the path.
type Options struct {
	// Derive fills the fields a migration cannot know from an older record (ArchivedLate).
	Derive func(*Package)
	// Progress is told how many packages a migration has done, of how many.
	Progress func(done, total int)
}

// migrate brings an older index to Version in transactions of a few thousand packages,
// each recording how far it got: a migration stopped by a crash resumes where it was.
func (db *DB) migrate(opts Options) error {
	version, from := 0, ""
	err := db.bolt.View(func(tx *bolt.Tx) error {
		st := tx.Bucket([]byte(State))
		if v := st.Get([]byte(versionKey)); v != nil {
			version, _ = strconv.Atoi(string(v))
		} else if tx.Bucket(bPackages).Stats().KeyN == 0 {
			version = Version // a new index
		} else {
			version = 1
		}
		from = string(st.Get([]byte(migrationKey)))
		return nil
	})
	if err != nil {
		return err
	}
	if version > Version {
		return fmt.Errorf("the index has layout %d, newer than this dangan's %d: upgrade dangan", version, Version)
	}
	if version == 2 {
		if err := db.dropArchiveCopies(opts); err != nil {
			return fmt.Errorf("migrate the index to layout %d: %w", Version, err)
		}
		version = Version
	}
	if version == Version {
		return db.bolt.Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(State)).Put([]byte(versionKey), []byte(strconv.Itoa(Version)))
		})
	}
	total, done := 0, 0
	db.bolt.View(func(tx *bolt.Tx) error {
		total = tx.Bucket(bPackages).Stats().KeyN
		c := tx.Bucket(bPackages).Cursor()
		for k, _ := c.First(); k != nil && from != "" && string(k) <= from; k, _ = c.Next() {
			done++
		}
		return nil
	})
	const batch = 2000
	for {
		n := 0
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			c := tx.Bucket(bPackages).Cursor()
			k, v := c.First()
			if from != "" {
				if k, v = c.Seek([]byte(from)); bytes.Equal(k, []byte(from)) {
					k, v = c.Next()
				}
			}
			var todo []*Package
			var last []byte
			for ; k != nil && len(todo) < batch; k, v = c.Next() {
				p := new(Package) // a version 1 record holds its documents
				if err := json.Unmarshal(v, p); err != nil {
					return fmt.Errorf("migrate package %s: %w", k, err)
				}
				todo = append(todo, p)
				last = append(last[:0], k...)
			}
			// Written after the walk: bbolt cursors do not survive writes to their bucket.
			for _, p := range todo {
				if opts.Derive != nil {
					opts.Derive(p)
				}
				if err := putPackage(tx, nil, p); err != nil {
					return fmt.Errorf("migrate package %s: %w", p.ID, err)
				}
			}
			n = len(todo)
			if n == 0 {
				if tx.Bucket(bByDateV1) != nil {
					if err := tx.DeleteBucket(bByDateV1); err != nil {
						return err
					}
				}
				st := tx.Bucket([]byte(State))
				if err := st.Delete([]byte(migrationKey)); err != nil {
					return err
				}
				return st.Put([]byte(versionKey), []byte(strconv.Itoa(Version)))
			}
			from = string(last)
			return tx.Bucket([]byte(State)).Put([]byte(migrationKey), last)
		})
		if err != nil {
			return fmt.Errorf("migrate the index to layout %d: %w", Version, err)
		}
		if n == 0 {
			return nil
		}
		done += n
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
}

// dropArchiveCopies deletes layout 2's archive-wide copies of the secondary keys, a few
// thousand a transaction; stopped, it resumes by deleting what is left.
func (db *DB) dropArchiveCopies(opts Options) error {
	total, err := db.Count() // for the progress only
	if err != nil {
		return err
	}
	done := 0
	for {
		n := 0
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bIdx)
			var todo [][]byte
			for _, f := range families {
				prefix := []byte(string(f) + AllDepartments + "\x00")
				c := b.Cursor()
				for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(todo) < 20000; k, _ = c.Next() {
					todo = append(todo, append([]byte{}, k...))
				}
			}
			// Deleted after the walk: bbolt cursors do not survive writes to their bucket.
			for _, k := range todo {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			n = len(todo)
			return nil
		})
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		done += n
		if opts.Progress != nil {
			opts.Progress(min(done/7, total), total) // about seven keys a package
		}
	}
}

package archive

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dangan-archive/dangan/storage/index"
)

// A migration run started over the API or the console runs in the background, one at a
// time; its progress is kept in the index, so the last run's outcome outlives a restart.
// A run stopped by a restart is not resumed by itself: starting one again resumes it.

const migrationRunKey = "migration-run"

type migrationState struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

func (m *migrationState) stop() {
	m.mu.Lock()
	cancel, done := m.cancel, m.done
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// StartMigration starts a migration run in the background (the archive and the
// administrator) unless one runs.
func (a *Archive) StartMigration(who Principal, opts MigrationOptions) (*MigrationRun, error) {
	if who.Role != RoleArchive && who.Role != RoleAdmin {
		return nil, fmt.Errorf("%w: migration is run by the archive or the administrator", ErrForbidden)
	}
	if opts.Rate < 0 || opts.Limit < 0 {
		return nil, fieldErr("rate", fmt.Errorf("%w: rate and limit are not negative", ErrInvalidCase))
	}
	m := &a.migration
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil {
		run, _ := a.MigrationStatus(who)
		return run, fmt.Errorf("%w: a migration run is in progress (%d/%d)", ErrState, run.Done, run.Total)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	started := &MigrationRun{Running: true, By: who.Person(), Started: a.now().UTC(), Failed: []MigrationFailure{}}
	if err := a.index.PutRecord(index.State, migrationRunKey, started); err != nil {
		cancel()
		m.cancel = nil
		return nil, err
	}
	var last time.Time
	opts.Progress = func(r *MigrationRun) {
		if !r.Running || time.Since(last) > time.Second {
			last = time.Now()
			if err := a.index.PutRecord(index.State, migrationRunKey, r); err != nil {
				a.log.Error("record migration progress", "err", err)
			}
		}
	}
	go func() {
		defer close(m.done)
		_, err := a.RunMigration(ctx, who, opts)
		m.mu.Lock()
		m.cancel = nil
		m.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			a.log.Error("migration run failed", "err", err)
		}
	}()
	return started, nil
}

// MigrationStatus is the current or last migration run (the archive, auditors and the
// administrator).
func (a *Archive) MigrationStatus(who Principal) (*MigrationRun, error) {
	if who.Role != RoleArchive && who.Role != RoleAdmin && who.Role != RoleAuditor {
		return nil, fmt.Errorf("%w: migration runs are seen by the archive, auditors and the administrator", ErrForbidden)
	}
	var run MigrationRun
	if err := a.index.Record(index.State, migrationRunKey, &run); errors.Is(err, index.ErrNotFound) {
		return &MigrationRun{Failed: []MigrationFailure{}}, nil
	} else if err != nil {
		return nil, err
	}
	return &run, nil
}

package archive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/archive/eventlog"
)

// logKeys records in the event log every certificate the archive signs or trusts with,
// once: a key or trust-root change is then an event like any other, visible to auditors.
func (a *Archive) logKeys(ctx context.Context) error {
	type use struct {
		role string
		cert *smx509.Certificate
	}
	uses := []use{{"archive", a.pki.Archive.Cert}, {"tsa", a.pki.TSA.Cert}}
	for _, r := range a.pki.Roots() {
		uses = append(uses, use{"root", r})
	}
	var events []eventlog.Event
	for _, u := range uses {
		fp := sm3.Sum(u.cert.Raw)
		subject := "certificate/" + hex.EncodeToString(fp[:])
		if _, err := a.elog.Find(eventlog.TypeKey, subject); err == nil {
			continue
		} else if !errors.Is(err, eventlog.ErrNotFound) {
			return err
		}
		events = append(events, eventlog.Event{Type: eventlog.TypeKey, Time: a.now(), Actor: "admin", Subject: subject,
			Digest: hex.EncodeToString(fp[:]), Attrs: map[string]string{"role": u.role, "subject": u.cert.Subject.CommonName,
				"not_before": u.cert.NotBefore.UTC().Format(time.RFC3339), "not_after": u.cert.NotAfter.UTC().Format(time.RFC3339)}})
	}
	if len(events) == 0 {
		return nil
	}
	if _, err := a.elog.Append(ctx, events...); err != nil {
		return fmt.Errorf("log the keys in use: %w", err)
	}
	return nil
}

// logEvent appends one event about a package; the change it records is already made, so a
// failure is reported to the caller, who tells the user the log lags.
func (a *Archive) logEvent(ctx context.Context, e eventlog.Event) error {
	if e.Time.IsZero() {
		e.Time = a.now()
	}
	if _, err := a.elog.Append(ctx, e); err != nil {
		return fmt.Errorf("%w: event log: %v", ErrUnavailable, err)
	}
	return nil
}

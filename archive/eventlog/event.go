package eventlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event types: every state change of a record, and what keeps the log itself honest.
const (
	TypeIngest           = "ingest"            // a package was archived: subject package id, digest SM3 of the EEP
	TypeAmendment        = "amendment"         // retention extended, legal hold placed or released
	TypeMigrated         = "migration"         // an amended package (修改型) became a package's current form: subject <id>/修改<n>, digest SM3 of it
	TypeAudit            = "audit"             // a periodic 四性 check of a package
	TypeTransferSent     = "transfer-sent"     // a transfer batch left for the county archive
	TypeTransferReceived = "transfer-received" // a package was accepted from a department
	TypeReceipt          = "receipt"           // a transfer receipt was verified and applied
	TypeDisposal         = "disposal-decision" // an appraisal decision (destroy or extend)
	TypeDestruction      = "destruction"       // a package's objects were deleted; its tombstone stays
	TypeCertIssued       = "certificate-issued"
	TypeCertRevoked      = "certificate-revoked"
	TypeKey              = "key"              // a signing key or trust root came into use
	TypeTimestamp        = "timestamp"        // a checkpoint's RFC 3161 token, so later checkpoints cover it
	TypeUseRequest       = "use-request"      // a department asked to read another's records (subject use/<id>)
	TypeUseDecision      = "use-decision"     // the owner or the archive approved, narrowed or refused it
	TypeUseRevoked       = "use-revoked"      // an approved request's grant was ended early
	TypeGrantExpired     = "grant-expired"    // an approved request's grant reached its end
	TypeSharedRead       = "shared-read"      // a department read another's package under sharing
	TypeOpening          = "opening-decision" // an archivist proposed records for opening, or a second refused it
	TypeOpened           = "opened"           // a package was opened to the public through its redacted copy
	TypeOpeningClosed    = "opening-closed"   // an opened package was closed again
	TypeDeferral         = "deferral"         // a later transfer asked for, received, decided or applied (subject deferral/<id>)
	TypeInspection       = "inspection"       // a compliance report made and signed, or received (subject inspection/<id>)
)

// ErrBadEvent is returned (wrapped) for an event that is not in canonical form.
var ErrBadEvent = errors.New("malformed event")

// Event is one leaf of the log. Its canonical encoding (Encode) is what the leaf hash
// covers: JSON with the fields in this order, map keys sorted, time in UTC, no HTML escaping,
// no insignificant space. Personal data never goes into an event: the log is read by
// auditors and proofs travel with evidence files.
type Event struct {
	Type    string            `json:"type"`
	Time    time.Time         `json:"time"`
	Actor   string            `json:"actor,omitempty"` // who caused it: a role and organisation
	Subject string            `json:"subject"`         // a package id, certificate identifier, transfer id, …
	Digest  string            `json:"digest,omitempty"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

// Encode returns the canonical encoding.
func (e Event) Encode() ([]byte, error) {
	if e.Type == "" || e.Subject == "" || e.Time.IsZero() {
		return nil, fmt.Errorf("%w: type, subject and time are required", ErrBadEvent)
	}
	e.Time = e.Time.UTC()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseEvent decodes an event and insists that b is its canonical encoding, so that two
// encodings of one event cannot both be in a log.
func ParseEvent(b []byte) (Event, error) {
	var e Event
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	canon, err := e.Encode()
	if err != nil {
		return e, err
	}
	if !bytes.Equal(canon, b) {
		return e, fmt.Errorf("%w: not in canonical form", ErrBadEvent)
	}
	return e, nil
}

package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/signing/merkle"
	"github.com/dangan-archive/dangan/storage"
)

// Problem is an RFC 9457 problem detail. Type is stable: clients branch on it.
type Problem struct {
	Type   string               `json:"type"`
	Title  string               `json:"title"`
	Status int                  `json:"status"`
	Detail string               `json:"detail,omitempty"`
	Field  string               `json:"field,omitempty"`
	Errors []archive.FieldError `json:"errors,omitempty"`
	// For type retained: until when, and whether a legal hold applies.
	RetainedUntil string `json:"retained_until,omitempty"`
	LegalHold     bool   `json:"legal_hold,omitempty"`
	// For type witness-size: the size the witness last cosigned.
	WitnessSize *uint64        `json:"witness_size,omitempty"`
	Extra       map[string]any `json:"-"`
}

// ProblemBase prefixes every problem type.
const ProblemBase = "urn:dangan:problem:"

func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

func problem(status int, typ, title, detail string) Problem {
	return Problem{Type: ProblemBase + typ, Title: title, Status: status, Detail: detail}
}

// problemFor maps an error to its problem. Unknown errors are 500s and are logged.
func problemFor(ctx context.Context, log *slog.Logger, err error) Problem {
	var p Problem
	var ve *archive.ValidationError
	var mbe *http.MaxBytesError
	var re *archive.RetainedError
	var se *eventlog.SizeError
	switch {
	case errors.As(err, &se):
		p = problem(http.StatusConflict, "witness-size", "Consistency proof from another size needed", err.Error())
		p.WitnessSize = &se.Size
	case errors.Is(err, eventlog.ErrFork):
		p = problem(http.StatusConflict, "log-fork", "Log fork: the checkpoint contradicts one witnessed before", err.Error())
	case errors.Is(err, eventlog.ErrCheckpointBody), errors.Is(err, eventlog.ErrCheckpointSignature),
		errors.Is(err, eventlog.ErrCheckpointSigner), errors.Is(err, eventlog.ErrCheckpointToken):
		p = problem(http.StatusUnprocessableEntity, "invalid-checkpoint", "Checkpoint does not verify", err.Error())
		p.Field = "checkpoint"
	case errors.Is(err, merkle.ErrBadSize):
		p = problem(http.StatusBadRequest, "bad-range", "Index or size outside the log", err.Error())
	case errors.Is(err, eventlog.ErrEmpty):
		p = problem(http.StatusNotFound, "not-found", "Not found", err.Error())
	case errors.As(err, &re):
		p = problem(http.StatusConflict, "retained", "Retained: cannot be deleted yet", err.Error())
		p.RetainedUntil, p.LegalHold = re.Until.Format(time.DateOnly), re.LegalHold
	case errors.Is(err, storage.ErrRetentionShortened):
		p = problem(http.StatusConflict, "retention-shortened", "Retention can only be extended", err.Error())
	case errors.As(err, &mbe), errors.Is(err, archive.ErrTooLarge):
		p = problem(http.StatusRequestEntityTooLarge, "too-large", "Request too large", err.Error())
	case errors.As(err, &ve):
		p = problem(http.StatusUnprocessableEntity, "invalid-case", "Invalid case", ve.Error())
		p.Errors = ve.Fields
		p.Field = ve.Fields[0].Field
	case errors.Is(err, archive.ErrThrottled):
		p = problem(http.StatusTooManyRequests, "auth-throttled", "Too many failed logins or tokens", err.Error())
	case errors.Is(err, archive.ErrTokenExpired), errors.Is(err, archive.ErrTokenRevoked), errors.Is(err, archive.ErrTokenBinding):
		p = problem(http.StatusUnauthorized, "unauthorized", "Authentication required", err.Error())
	case errors.Is(err, archive.ErrUnauthorized):
		p = problem(http.StatusUnauthorized, "unauthorized", "Authentication required", "send a valid token as 'Authorization: Bearer <token>'")
	case errors.Is(err, archive.ErrForbidden):
		p = problem(http.StatusForbidden, "forbidden", "Not allowed", err.Error())
	case errors.Is(err, archive.ErrBadSignature):
		p = problem(http.StatusUnprocessableEntity, "bad-signature", "Signed document does not verify", err.Error())
	case errors.Is(err, archive.ErrGone):
		p = problem(http.StatusGone, "destroyed", "Destroyed: only its tombstone remains", err.Error())
	case errors.Is(err, archive.ErrNotFound), errors.Is(err, storage.ErrNotFound):
		p = problem(http.StatusNotFound, "not-found", "Not found", err.Error())
	case errors.Is(err, archive.ErrState):
		p = problem(http.StatusConflict, "conflict", "Not possible in the current state", err.Error())
	case errors.Is(err, archive.ErrConflict):
		p = problem(http.StatusConflict, "case-conflict", "Case already archived with different content", err.Error())
	case errors.Is(err, formats.ErrEmpty):
		p = problem(http.StatusBadRequest, "empty-document", "Empty document", err.Error())
	case errors.Is(err, formats.ErrMislabelled):
		p = problem(http.StatusUnsupportedMediaType, "mislabelled-format", "File name does not match content", err.Error())
	case errors.Is(err, formats.ErrUnsupported):
		p = problem(http.StatusUnsupportedMediaType, "unsupported-format", "Format not accepted", err.Error())
	case errors.Is(err, formats.ErrEncrypted):
		p = problem(http.StatusUnprocessableEntity, "encrypted-document", "Encrypted document refused (DA/T 70 GD-3-8)", err.Error())
	case errors.Is(err, formats.ErrInvalid):
		p = problem(http.StatusUnprocessableEntity, "invalid-document", "Damaged or invalid document", err.Error())
	case errors.Is(err, archive.ErrBadUpload):
		p = problem(http.StatusBadRequest, "bad-upload", "Bad upload", err.Error())
	case errors.Is(err, archive.ErrInvalidCase):
		p = problem(http.StatusUnprocessableEntity, "invalid-request", "Invalid request", err.Error())
	case errors.Is(err, archive.ErrBusy):
		p = problem(http.StatusServiceUnavailable, "busy", "Too many ingests in progress", err.Error())
	case errors.Is(err, archive.ErrUnavailable), errors.Is(err, storage.ErrUnavailable):
		p = problem(http.StatusServiceUnavailable, "unavailable", "Temporarily unavailable", err.Error())
	case errors.Is(err, context.Canceled):
		p = problem(499, "cancelled", "Request cancelled", "the client went away")
	default:
		log.ErrorContext(ctx, "internal error", "err", err)
		p = problem(http.StatusInternalServerError, "internal", "Internal error", "the error was logged; nothing was archived")
	}
	var fe *archive.FieldErr
	if p.Field == "" && errors.As(err, &fe) {
		p.Field = fe.Field
	}
	return p
}

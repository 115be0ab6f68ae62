package api

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/signing/merkle"
)

// The event log's endpoints. The checkpoint and the proofs are public: they hold hashes
// and signatures only, and a verifier or witness needs them without an account. The
// entries (the events themselves) are for auditors and the archive.

func (s *server) logCheckpoint(w http.ResponseWriter, r *http.Request) {
	sc := s.a.Log().Latest()
	if sc == nil {
		s.fail(w, r, fmt.Errorf("%w: the event log has no checkpoint yet", archive.ErrNotFound))
		return
	}
	writeJSON(w, http.StatusOK, sc)
}

// queryUint reads a non-negative integer query parameter; def when absent.
func queryUint(r *http.Request, name string, def uint64) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fieldErr(name, fmt.Errorf("%w: %s must be a non-negative integer", archive.ErrInvalidCase, name))
	}
	return n, nil
}

// latestSize is the size of the latest checkpoint: the default tree for proofs, so that a
// proof matches a root a client can get signed.
func (s *server) latestSize() uint64 { return s.a.Log().LatestSize() }

// InclusionResponse is GET /api/v1/log/proof/inclusion.
type InclusionResponse struct {
	Index    uint64   `json:"index"`
	TreeSize uint64   `json:"tree_size"`
	LeafHash string   `json:"leaf_hash,omitempty"`
	Proof    [][]byte `json:"proof"`
}

func (s *server) logInclusion(w http.ResponseWriter, r *http.Request) {
	size, err := queryUint(r, "size", s.latestSize())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := InclusionResponse{TreeSize: size}
	if lh := r.URL.Query().Get("leaf_hash"); lh != "" {
		b, err := hex.DecodeString(lh)
		if err != nil || len(b) != merkle.SM3.Size {
			s.fail(w, r, fieldErr("leaf_hash", fmt.Errorf("%w: leaf_hash must be 64 hex digits", archive.ErrInvalidCase)))
			return
		}
		if resp.Index, err = s.a.Log().IndexOfLeaf(b); err != nil {
			s.fail(w, r, fmt.Errorf("%w: %v", archive.ErrNotFound, err))
			return
		}
		resp.LeafHash = lh
	} else {
		if r.URL.Query().Get("index") == "" {
			s.fail(w, r, fieldErr("index", fmt.Errorf("%w: give index or leaf_hash", archive.ErrInvalidCase)))
			return
		}
		if resp.Index, err = queryUint(r, "index", 0); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if resp.Index >= size {
		s.fail(w, r, fieldErr("size", fmt.Errorf("%w: event %d is not in a tree of %d (the latest checkpoint is %d)", archive.ErrInvalidCase, resp.Index, size, s.latestSize())))
		return
	}
	if resp.Proof, err = s.a.Log().InclusionProof(resp.Index, size); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// ConsistencyResponse is GET /api/v1/log/proof/consistency.
type ConsistencyResponse struct {
	From  uint64   `json:"from"`
	To    uint64   `json:"to"`
	Proof [][]byte `json:"proof"`
}

func (s *server) logConsistency(w http.ResponseWriter, r *http.Request) {
	from, err := queryUint(r, "from", 0)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	to, err := queryUint(r, "to", s.latestSize())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if from > to {
		s.fail(w, r, fieldErr("from", fmt.Errorf("%w: from %d is after to %d", archive.ErrInvalidCase, from, to)))
		return
	}
	proof, err := s.a.Log().ConsistencyProof(from, to)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ConsistencyResponse{From: from, To: to, Proof: proof})
}

func (s *server) logEntries(w http.ResponseWriter, r *http.Request) {
	if err := s.a.CanAudit(principal(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	start, err := queryUint(r, "start", 0)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	count, err := queryUint(r, "count", 100)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if count == 0 || count > 1000 {
		s.fail(w, r, fieldErr("count", fmt.Errorf("%w: count must be 1..1000", archive.ErrInvalidCase)))
		return
	}
	es, err := s.a.Log().Entries(r.Context(), start, count)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("event log read", "who", principal(r).String(), "start", start, "count", len(es))
	writeJSON(w, http.StatusOK, map[string]any{"size": s.a.Log().Size(), "entries": es})
}

func (s *server) logWitness(w http.ResponseWriter, r *http.Request) {
	if p := principal(r); p.Role != archive.RoleDepartment && p.Role != archive.RoleArchive {
		s.fail(w, r, fmt.Errorf("%w: checkpoints are offered for witnessing with a department or archive token", archive.ErrForbidden))
		return
	}
	var req eventlog.WitnessRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.fail(w, r, fieldErr("checkpoint", fmt.Errorf("%w: %v", archive.ErrBadUpload, err)))
		return
	}
	cs, err := s.a.Log().Cosign(r.Context(), &req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cs)
}

func (s *server) logWitnessed(w http.ResponseWriter, r *http.Request) {
	if err := s.a.CanAudit(principal(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	origin := r.URL.Query().Get("origin")
	if origin == "" {
		s.fail(w, r, fieldErr("origin", fmt.Errorf("%w: origin is required", archive.ErrInvalidCase)))
		return
	}
	sc, err := s.a.Log().Witnessed(origin)
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: %v", archive.ErrNotFound, err))
		return
	}
	writeJSON(w, http.StatusOK, sc)
}

func (s *server) logRenew(w http.ResponseWriter, r *http.Request) {
	if principal(r).Role != archive.RoleAdmin {
		s.fail(w, r, fmt.Errorf("%w: only an admin renews the log's timestamps", archive.ErrForbidden))
		return
	}
	sc, err := s.a.Log().Renew(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: %v", archive.ErrUnavailable, err))
		return
	}
	writeJSON(w, http.StatusOK, sc)
}

func fieldErr(field string, err error) error { return &archive.FieldErr{Field: field, Err: err} }

// logMetrics exposes the event log's counters.
func logMetrics(a *archive.Archive) []prometheus.Collector {
	st := &a.Log().Stats
	counter := func(name, help string, read func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(read()) })
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dangan_log_size", Help: "Events in the event log."},
			func() float64 { return float64(a.Log().Size()) }),
		counter("dangan_log_events_appended_total", "Events appended since start.", st.Events.Load),
		counter("dangan_log_bundles_total", "Bundles (durable writes) of events since start.", st.Bundles.Load),
		counter("dangan_log_checkpoints_total", "Checkpoints signed since start.", st.Checkpoints.Load),
		counter("dangan_log_timestamp_tokens_total", "RFC 3161 tokens obtained for checkpoints since start.", st.Tokens.Load),
		counter("dangan_log_checkpoint_failures_total", "Checkpoints that failed (TSA, storage) since start.", st.CheckpointFailures.Load),
		counter("dangan_log_cosigned_total", "Checkpoints of other archives this archive cosigned as a witness.", st.Cosigned.Load),
		counter("dangan_log_inconsistencies_total", "Signed checkpoints that the events replayed from storage contradicted (at start-up).", st.Inconsistencies.Load),
		counter("dangan_log_forks_detected_total", "Checkpoints refused as a witness because they contradict one cosigned before.", st.Forks.Load),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dangan_log_last_cosigned_timestamp_seconds", Help: "When a witness last cosigned this archive's log (Unix time; 0: never)."},
			func() float64 {
				if t := a.Log().CosignedAt(); !t.IsZero() {
					return float64(t.Unix())
				}
				return 0
			}),
	}
}

// auditMetrics exposes the auditor's counters.
func auditMetrics(a *archive.Archive) []prometheus.Collector {
	st := a.AuditStats()
	counter := func(name, help string, read func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(read()) })
	}
	return []prometheus.Collector{
		counter("dangan_audit_packages_total", "Packages audited (四性检测) since start.", st.Packages.Load),
		counter("dangan_audit_failures_total", "Audits that found a package failing a check since start.", st.Failures.Load),
		counter("dangan_audit_bytes_total", "Bytes read by the auditor since start.", st.Bytes.Load),
	}
}

// statisticsCollector exposes the statistics (统计) as gauges, read from the counters at
// each scrape: per department and for the whole archive ("*"), per dimension and value.
type statisticsCollector struct {
	a             *archive.Archive
	count, nbytes *prometheus.Desc
}

func newStatisticsCollector(a *archive.Archive) *statisticsCollector {
	labels := []string{"department", "dimension", "value"}
	return &statisticsCollector{a: a,
		count:  prometheus.NewDesc("dangan_holdings_packages", "Packages (files, for dimension format) held, by department (* for all), dimension and value; destroyed packages under state destroyed.", labels, nil),
		nbytes: prometheus.NewDesc("dangan_holdings_bytes", "Bytes held, by department (* for all), dimension and value.", labels, nil)}
}

func (c *statisticsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.count; ch <- c.nbytes }

func (c *statisticsCollector) Collect(ch chan<- prometheus.Metric) {
	scopes, err := c.a.StatisticsScopes()
	if err != nil {
		return
	}
	for _, scope := range scopes {
		st, err := c.a.RawStatistics(scope)
		if err != nil {
			return
		}
		for dim, values := range st {
			for v, n := range values {
				ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(n.Count), scope, dim, v)
				ch <- prometheus.MustNewConstMetric(c.nbytes, prometheus.GaugeValue, float64(n.Bytes), scope, dim, v)
			}
		}
	}
}

func (s *server) statistics(w http.ResponseWriter, r *http.Request) {
	rep, err := s.a.Statistics(r.Context(), principal(r), r.URL.Query().Get("department"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

package archive

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Failed logins and failed token checks are throttled per client address: an address may
// fail AuthFailures times (default 10) at once, and then once every minute/AuthFailures;
// while its allowance is spent, every attempt from it (right or wrong) answers
// *ThrottledError without the password or token being looked at.

// ErrThrottled is an attempt refused because its address failed too often.
var ErrThrottled = errors.New("too many failed logins or tokens from this address")

// ThrottledError says how long until the address may try again.
type ThrottledError struct{ Wait time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%v; try again in %d s", ErrThrottled, e.RetryAfter())
}

func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// RetryAfter is Wait in whole seconds, at least one.
func (e *ThrottledError) RetryAfter() int { return max(1, int(math.Ceil(e.Wait.Seconds()))) }

type authThrottle struct {
	mu      sync.Mutex
	burst   float64
	perSec  float64
	clients map[string]*failBucket
	swept   time.Time
}

type failBucket struct {
	left float64
	last time.Time
}

func newAuthThrottle(burst int) *authThrottle {
	if burst <= 0 {
		burst = 10
	}
	return &authThrottle{burst: float64(burst), perSec: float64(burst) / 60, clients: map[string]*failBucket{}}
}

func (t *authThrottle) bucket(addr string, now time.Time) *failBucket {
	if now.Sub(t.swept) > time.Minute {
		for k, b := range t.clients {
			if now.Sub(b.last) > 2*time.Minute {
				delete(t.clients, k)
			}
		}
		t.swept = now
	}
	b, ok := t.clients[addr]
	if !ok {
		b = &failBucket{left: t.burst, last: now}
		t.clients[addr] = b
	}
	b.left = math.Min(t.burst, b.left+now.Sub(b.last).Seconds()*t.perSec)
	b.last = now
	return b
}

// check refuses an address whose allowance of failures is spent.
func (t *authThrottle) check(addr string) error {
	if addr == "" {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.bucket(addr, time.Now()); b.left < 1 {
		return &ThrottledError{Wait: time.Duration((1 - b.left) / t.perSec * float64(time.Second))}
	}
	return nil
}

// failed spends one of the address's failures.
func (t *authThrottle) failed(addr string) {
	if addr == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bucket(addr, time.Now()).left--
}

package hub

import (
	"context"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// RetryPolicy is the backoff for idempotent calls (preupload, LFS batch,
// part and basic PUTs, completion, verify, listing pages). Its defaults are
// huggingface_hub's http_backoff: 5 retries, waits of 1, 2, 4, 8, 8 seconds,
// here with jitter. The commit is never retried by this policy (see Commit).
type RetryPolicy struct {
	MaxRetries    int           // retries after the first attempt; 0 → 5, negative → none
	BaseWait      time.Duration // first wait; 0 → 1s; doubles per retry
	MaxWait       time.Duration // cap of one computed wait; 0 → 8s
	MaxServerWait time.Duration // longest Retry-After/RateLimit wait honoured; 0 → 5m; longer → fail with ErrRateLimited
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	switch {
	case p.MaxRetries == 0:
		p.MaxRetries = 5
	case p.MaxRetries < 0:
		p.MaxRetries = 0
	}
	if p.BaseWait <= 0 {
		p.BaseWait = time.Second
	}
	if p.MaxWait <= 0 {
		p.MaxWait = 8 * time.Second
	}
	if p.MaxWait < p.BaseWait {
		p.MaxWait = p.BaseWait
	}
	if p.MaxServerWait <= 0 {
		p.MaxServerWait = 5 * time.Minute
	}
	return p
}

// backoff returns the wait before retry number attempt+1: exponential with
// "equal jitter" (half fixed, half random) so parallel parts spread out.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := p.BaseWait
	for i := 0; i < attempt && d < p.MaxWait; i++ {
		d *= 2
	}
	d = min(d, p.MaxWait)
	half := d / 2
	return half + rand.N(half+1)
}

// retryStatus lists the statuses worth another try (huggingface_hub
// http_backoff; its code includes 408 although the docstring omits it).
var retryStatus = map[int]bool{
	http.StatusRequestTimeout:      true, // 408
	http.StatusTooManyRequests:     true, // 429, after the wait the Hub asks for
	http.StatusInternalServerError: true, // 500
	http.StatusBadGateway:          true, // 502
	http.StatusServiceUnavailable:  true, // 503
	http.StatusGatewayTimeout:      true, // 504
}

func retryable(e *Error) bool {
	return e.Kind == ErrNetwork || retryStatus[e.StatusCode]
}

// rateLimitT matches the reset time of an IETF RateLimit header as the Hub
// sends it: `"api";r=0;t=55`.
var rateLimitT = regexp.MustCompile(`(?:^|;)\s*t=(\d+)`)
var rateLimitR = regexp.MustCompile(`(?:^|;)\s*r=(\d+)`)

// serverWait returns the wait the server asked for: on a 429, RateLimit's
// t+1 seconds (as huggingface_hub does) when the remaining quota r is 0 or
// absent; otherwise Retry-After in seconds or as an HTTP date.
func serverWait(status int, h http.Header) (time.Duration, bool) {
	if status == http.StatusTooManyRequests {
		if rl := h.Get("RateLimit"); rl != "" {
			r := rateLimitR.FindStringSubmatch(rl)
			if t := rateLimitT.FindStringSubmatch(rl); t != nil && (r == nil || r[1] == "0") {
				if n, err := strconv.Atoi(t[1]); err == nil {
					return time.Duration(n+1) * time.Second, true
				}
			}
		}
	}
	ra := h.Get("Retry-After")
	if ra == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(ra); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(ra); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

package hub

import (
	"context"
	"sync"
)

// group runs functions concurrently, at most limit at a time, cancels the
// shared context at the first error and returns it from wait. It is the
// small part of errgroup this package needs (stdlib only).
type group struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc
	sem    chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func newGroup(parent context.Context, limit int) *group {
	ctx, cancel := context.WithCancelCause(parent)
	return &group{parent: parent, ctx: ctx, cancel: cancel, sem: make(chan struct{}, max(limit, 1))}
}

// do starts f when a slot is free; it returns false, without starting f,
// once the group's context is done.
func (g *group) do(f func(ctx context.Context) error) bool {
	select {
	case g.sem <- struct{}{}:
	case <-g.ctx.Done():
		return false
	}
	g.wg.Add(1)
	go func() {
		defer func() { <-g.sem; g.wg.Done() }()
		if err := f(g.ctx); err != nil {
			g.once.Do(func() { g.err = err; g.cancel(err) })
		}
	}()
	return true
}

// wait waits for every started function and returns the first error, or
// the parent context's error.
func (g *group) wait() error {
	g.wg.Wait()
	g.cancel(nil)
	if g.err != nil {
		return g.err
	}
	return g.parent.Err()
}

// acquire takes a slot of a shared semaphore, or fails when ctx is done.
func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

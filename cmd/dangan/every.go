package main

import "time"

// every calls fn each d until stop is closed, in a goroutine of its own; the channel it
// returns is closed once that goroutine has ended (fn is not called after).
func every(d time.Duration, stop <-chan struct{}, fn func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	return done
}

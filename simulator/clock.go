package simulator

import (
	"sync"
	"time"
)

// Clock is the simulator's notion of now: a start instant that runs at Speed
// times real time (0 freezes it) and can be moved by hand. The signature
// check never uses it: the SDK signs with the real time.
type Clock struct {
	mu       sync.Mutex
	base     time.Time
	realBase time.Time
	speed    float64
}

// NewClock starts a clock at start running speed times real time.
func NewClock(start time.Time, speed float64) *Clock {
	return &Clock{base: start, realBase: time.Now(), speed: speed}
}

// Now is the simulated instant.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *Clock) nowLocked() time.Time {
	if c.speed == 0 {
		return c.base
	}
	return c.base.Add(time.Duration(float64(time.Since(c.realBase)) * c.speed))
}

// Advance moves the clock forward by d (backward for negative d).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base = c.nowLocked().Add(d)
	c.realBase = time.Now()
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.realBase = t, time.Now()
}

// Speed is the fast-forward factor.
func (c *Clock) Speed() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.speed
}

// SetSpeed changes the fast-forward factor from now on (0 freezes).
func (c *Clock) SetSpeed(speed float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.realBase, c.speed = c.nowLocked(), time.Now(), speed
}

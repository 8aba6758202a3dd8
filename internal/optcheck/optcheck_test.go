package optcheck

import (
	"testing"
	"time"
)

type config struct {
	d time.Duration
	n int
}

// TestRefusals: each check refuses what it should, in the words the
// adapters' users see, and leaves the configuration untouched.
func TestRefusals(t *testing.T) {
	setD := func(d time.Duration) func(*config) { return func(c *config) { c.d = d } }
	setN := func(n int) func(*config) { return func(c *config) { c.n = n } }
	for _, tc := range []struct {
		opt  func(*config) error
		want string
	}{
		{Positive("x: WithPoll", time.Duration(0), setD(0)), "x: WithPoll(0s): must be positive"},
		{Positive("x: WithPoll", -time.Second, setD(-time.Second)), "x: WithPoll(-1s): must be positive"},
		{Positive("x: WithSize", -1, setN(-1)), "x: WithSize(-1): must be positive"},
		{NonNegative("x: WithTimeout", -time.Nanosecond, setD(-time.Nanosecond)), "x: WithTimeout(-1ns): must not be negative"},
		{AtLeast1("x: WithReaders", 0, setN(0)), "x: WithReaders(0): must be at least 1"},
		{PositiveAtMost("x: WithMax", 0, 10, setN(0)), "x: WithMax(0): must be positive and at most 10"},
		{PositiveAtMost("x: WithMax", 11, 10, setN(11)), "x: WithMax(11): must be positive and at most 10"},
		{WithHint(Positive("x: WithPoll", time.Duration(0), setD(0)), "WithoutPoll turns it off"), "x: WithPoll(0s): must be positive (WithoutPoll turns it off)"},
	} {
		c := config{d: 7, n: 7}
		err := tc.opt(&c)
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %q", err, tc.want)
		}
		if c != (config{d: 7, n: 7}) {
			t.Errorf("%q: the refused value was set: %+v", tc.want, c)
		}
	}
}

// TestAccepted: the values at the edges of each check are set.
func TestAccepted(t *testing.T) {
	var c config
	for _, opt := range []func(*config) error{
		Positive("x: WithPoll", time.Nanosecond, func(c *config) { c.d = time.Nanosecond }),
		WithHint(PositiveAtMost("x: WithMax", 10, 10, func(c *config) { c.n = 10 }), "unused"),
	} {
		if err := opt(&c); err != nil {
			t.Fatal(err)
		}
	}
	if c != (config{d: time.Nanosecond, n: 10}) {
		t.Errorf("config %+v, want d 1ns and n 10", c)
	}
	for _, opt := range []func(*config) error{
		NonNegative("x: WithTimeout", time.Duration(0), func(c *config) { c.d = 0 }),
		AtLeast1("x: WithReaders", 1, func(c *config) { c.n = 1 }),
	} {
		if err := opt(&c); err != nil {
			t.Fatal(err)
		}
	}
	if c != (config{d: 0, n: 1}) {
		t.Errorf("config %+v, want d 0 and n 1", c)
	}
}

package thirdparty

import (
	"testing"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
	"github.com/esv2/esv2/eventstore/eventstoretest"
)

// These tests run the suite on fronts over the same driver set up as Open
// does not: they exercise paths of the front that this driver's Open
// leaves aside, as other drivers take them.

// plain hides the driver's optional abilities (EventFinder, Listener):
// only the methods of driver.Driver are promoted.
type plain struct{ driver.Driver }

// TestConformanceWithoutAbilities runs the suite on the front over the bare
// Driver: FindEvent then answers errors.ErrUnsupported, as
// Features.NoFindEvent declares.
func TestConformanceWithoutAbilities(t *testing.T) {
	eventstoretest.RunFeatures(t, func(t *testing.T) eventstore.Store {
		return withClose(t, driver.New(plain{&memDriver{db: NewDB()}}, driver.Config{}))
	}, eventstoretest.Features{NoFindEvent: true, NoLifecycle: true})
}

// TestConformanceReadAhead runs the suite with tiny pages read ahead: after
// the first page of a Read, every page is fetched while the caller's loop
// runs on the one before (Config.ReadAhead, as a server database's driver
// sets it).
func TestConformanceReadAhead(t *testing.T) {
	cfg := driver.Config{MaxPageRows: 8, ReadAhead: true}
	eventstoretest.RunFeatures(t, func(t *testing.T) eventstore.Store {
		return withClose(t, driver.New(&memDriver{db: NewDB()}, cfg))
	}, eventstoretest.Features{
		NoLifecycle: true,
		NewPair: func(t *testing.T) (eventstore.Store, eventstore.Store) {
			db := NewDB()
			return withClose(t, driver.New(&memDriver{db: db}, cfg)), withClose(t, driver.New(&memDriver{db: db}, cfg))
		},
	})
}

// withClose registers s's Close with t.Cleanup and returns s.
func withClose(t *testing.T, s *driver.Front) *driver.Front {
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

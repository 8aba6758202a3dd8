package thirdparty

import (
	"testing"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/eventstore/driver"
	"github.com/esv2/esv2/eventstore/eventstoretest"
)

// plain hides the driver's optional abilities (EventFinder, Listener):
// only the methods of driver.Driver are promoted.
type plain struct{ driver.Driver }

// TestConformanceWithoutAbilities runs the suite on the front over the bare
// Driver: FindEvent then answers errors.ErrUnsupported, as
// Features.NoFindEvent declares.
func TestConformanceWithoutAbilities(t *testing.T) {
	eventstoretest.RunFeatures(t, func(t *testing.T) eventstore.Store {
		s := driver.New(plain{&memDriver{db: NewDB()}}, driver.Config{})
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}, eventstoretest.Features{NoFindEvent: true})
}

package simulator

import (
	"context"
	"time"

	"github.com/marketplace-operator/marketplace-operator/koogallery"
)

// KitCalls is how many times KooGallery calls a kit sync that fails before it stops and leaves
// any further retry to the buyer or the enterprise administrator (§1.10: "持续调用5次后停止调用").
const KitCalls = 5

// DefaultKitRetryInterval is the wait between those calls. The spec states none, so this is a
// choice of the simulator's; Config.RetrySchedule compresses it for tests.
const DefaultKitRetryInterval = time.Minute

// KitRetrySchedule returns the delays between the KitCalls calls of a kit sync: retry stretched
// or cut to KitCalls-1 delays by repeating its last one, DefaultKitRetryInterval each when retry
// is nil, none when retry is empty (a simulator told never to retry).
func KitRetrySchedule(retry []time.Duration) []time.Duration {
	if retry != nil && len(retry) == 0 {
		return nil
	}
	delays := make([]time.Duration, KitCalls-1)
	for i := range delays {
		delays[i] = DefaultKitRetryInterval
		if retry != nil {
			delays[i] = retry[min(i, len(retry)-1)]
		}
	}
	return delays
}

func isKitActivity(activity string) bool {
	for _, k := range koogallery.KitKinds() {
		if string(k) == activity {
			return true
		}
	}
	return false
}

// SendKit sends a kit sync to the production URL plus the kit path, calling again on a failure
// (no answer, a status other than 200, a result other than 000000) up to KitCalls calls in all,
// as KooGallery does. Each call is signed anew (fresh x-nonce and x-timestamp) over the same
// body, so the body's timeStamp is that of the first call.
func (s *Simulator) SendKit(ctx context.Context, req koogallery.KitRequest) (*Response, error) {
	body, err := koogallery.MarshalKitRequest(req)
	if err != nil {
		return nil, err
	}
	return s.call(ctx, target{activity: string(req.Kind()), path: req.Kind().Path(), body: body, kit: true})
}

package koogallery

import (
	"fmt"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The endpoint's default body limits (webhook.DefaultMaxBodyBytes, DefaultMaxKitBodyBytes).
const (
	benchBasicLimit = 1 << 20
	benchKitLimit   = 4 << 20
)

// unsignedShapes are bodies of valid JSON built to make the canonical form as expensive as
// possible: the raw body never verifies (the signature is random), so every one of them is
// canonicalised before the request is refused.
var unsignedShapes = []struct {
	name string
	// fill returns a body of at most size bytes.
	fill func(size int) []byte
}{
	// Many top-level members: each is a key to sort and a value to re-encode.
	{"members", func(size int) []byte {
		return repeatInside(size, `{`, `}`, ",", func(i int) string { return fmt.Sprintf(`"%x":0`, i) })
	}},
	// Many tiny tokens in one array.
	{"tokens", func(size int) []byte {
		return repeatInside(size, `{"a":[`, `]}`, ",", func(int) string { return "0" })
	}},
	// Empty objects: a container per three bytes.
	{"objects", func(size int) []byte {
		return repeatInside(size, `{"a":[`, `]}`, ",", func(int) string { return "{}" })
	}},
	// Arrays nested as deep as the canonical form accepts, side by side.
	{"nested", func(size int) []byte {
		deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
		return repeatInside(size, `{"a":[`, `]}`, ",", func(int) string { return deep })
	}},
	// Strings of escapes, each decoded and re-encoded.
	{"escapes", func(size int) []byte {
		return repeatInside(size, `{"a":[`, `]}`, ",", func(int) string { return `"\u00e9\ud83d\ude00\n"` })
	}},
	// Invalid UTF-8: every byte becomes U+FFFD, three bytes, so the canonical form is three times
	// the body.
	{"invalid-utf8", func(size int) []byte {
		return repeatInside(size, `{"a":"`, `"}`, "", func(int) string { return "\xff" })
	}},
}

// repeatInside writes open, then item(i) for i = 0, 1, … joined by sep while the body stays
// within size, then closing.
func repeatInside(size int, open, closing, sep string, item func(int) string) []byte {
	var b strings.Builder
	b.Grow(size)
	b.WriteString(open)
	for i := 0; ; i++ {
		s := item(i)
		if i > 0 {
			s = sep + s
		}
		if b.Len()+len(s)+len(closing) > size {
			break
		}
		b.WriteString(s)
	}
	b.WriteString(closing)
	return []byte(b.String())
}

// BenchmarkVerifyUnsigned measures what one unsigned request costs before it is refused: the
// largest body the endpoint reads, in each of the shapes above, with a well-formed signature
// that does not match, verified against two keys (a rotation in progress). Besides time and
// allocations per refusal it reports the CPU time of the whole process per refusal (garbage
// collection included) and the peak heap in use above the heap before the loop.
func BenchmarkVerifyUnsigned(b *testing.B) {
	keys := StaticKeys{[]byte(vecKey), []byte("previous-key")}
	for _, iface := range []struct {
		name  string
		limit int
	}{{"basic", benchBasicLimit}, {"kit", benchKitLimit}} {
		for _, shape := range unsignedShapes {
			body := shape.fill(iface.limit)
			b.Run(fmt.Sprintf("%s-%dMiB/%s", iface.name, iface.limit>>20, shape.name), func(b *testing.B) {
				v := NewVerifier(VerifierConfig{BasicKeys: keys, KitKeys: keys, Clock: fixedClock(vecNow)})
				verify := func() error {
					if iface.name == "kit" {
						h := http.Header{}
						h.Set(HeaderSign, strings.Repeat("AB", 32))
						h.Set(HeaderTimestamp, vecTimestamp)
						h.Set(HeaderNonce, vecNonce)
						return v.VerifyKit(h, body)
					}
					return v.VerifyBasic(query(strings.Repeat("AB", 32), vecTimestamp, vecNonce), body)
				}
				if err := verify(); KindOf(err) != KindSignatureMismatch {
					b.Fatalf("want a signature mismatch, got %v", err)
				}
				measureRefusals(b, verify)
			})
		}
	}
}

// BenchmarkVerifyUnsignedConcurrent is eight unsigned kit bodies of one shape at once, as eight
// connections could send them; one op is the eight refusals.
func BenchmarkVerifyUnsignedConcurrent(b *testing.B) {
	keys := StaticKeys{[]byte(vecKey), []byte("previous-key")}
	for _, shape := range unsignedShapes {
		body := shape.fill(benchKitLimit)
		b.Run("kit-4MiB-x8/"+shape.name, func(b *testing.B) {
			v := NewVerifier(VerifierConfig{KitKeys: keys, Clock: fixedClock(vecNow), SlotWait: time.Minute})
			h := http.Header{}
			h.Set(HeaderSign, strings.Repeat("AB", 32))
			h.Set(HeaderTimestamp, vecTimestamp)
			h.Set(HeaderNonce, vecNonce)
			measureRefusals(b, func() error {
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() { _ = v.VerifyKit(h, body) })
				}
				wg.Wait()
				return nil
			})
		})
	}
}

// measureRefusals runs op b.N times and reports cpu-ms/op (user and system time of the process,
// so the garbage collector's work counts) and peak-heap-MiB (the most heap in use while op ran,
// above what was in use before, sampled every millisecond).
func measureRefusals(b *testing.B, op func() error) {
	b.Helper()
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := heap()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if h := heap(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	cpu0 := cpuTime()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		_ = op()
		n++
	}
	cpu := cpuTime() - cpu0
	close(stop)
	<-done
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(n), "cpu-ms/op")
	if p := peak.Load(); p > base {
		b.ReportMetric(float64(p-base)/(1<<20), "peak-heap-MiB")
	} else {
		b.ReportMetric(0, "peak-heap-MiB")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package koogallery

import (
	"fmt"
	"strconv"
	"time"
)

const (
	layoutSeconds = "20060102150405"
	// kitZone is UTC+8: the kit timeStamp and currentSyncTime fields are Beijing time.
	kitOffset = 8 * 60 * 60
)

var kitZone = time.FixedZone("UTC+8", kitOffset)

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseDigits parses yyyyMMddHHmmss with an optional SSS suffix in loc.
func parseDigits(s string, loc *time.Location) (time.Time, error) {
	if !isDigits(s) || (len(s) != 14 && len(s) != 17) {
		return time.Time{}, fmt.Errorf("want 14 or 17 digits, got %d characters", len(s))
	}
	t, err := time.ParseInLocation(layoutSeconds, s[:14], loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("parsing date: %w", err)
	}
	if len(s) == 17 {
		ms, _ := strconv.Atoi(s[14:])
		t = t.Add(time.Duration(ms) * time.Millisecond)
	}
	return t, nil
}

// ParseExpireTime parses refreshInstance's expireTime. The documented format is yyyyMMddHHmmss
// but the documented example carries milliseconds, so both 14 and 17 digits are accepted; the
// value is UTC.
func ParseExpireTime(s string) (time.Time, error) {
	t, err := parseDigits(s, time.UTC)
	if err != nil {
		return time.Time{}, paramError(KindBadValue, "expireTime: "+err.Error())
	}
	return t, nil
}

// ParseKitTime parses the kit timeStamp and currentSyncTime fields (yyyyMMddHHmmssSSS, UTC+8).
func ParseKitTime(s string) (time.Time, error) {
	if len(s) != 17 {
		return time.Time{}, fmt.Errorf("want 17 digits, got %d characters", len(s))
	}
	return parseDigits(s, kitZone)
}

// FormatKitTime formats t as a kit timeStamp (yyyyMMddHHmmssSSS in UTC+8).
func FormatKitTime(t time.Time) string {
	t = t.In(kitZone)
	return t.Format(layoutSeconds) + fmt.Sprintf("%03d", t.Nanosecond()/int(time.Millisecond))
}

// FormatExpireTime formats t as an expireTime KooGallery sends (yyyyMMddHHmmss, UTC).
func FormatExpireTime(t time.Time) string { return t.UTC().Format(layoutSeconds) }

// FormatStatisticalTime formats t as usageInfo.statisticalTime (yyyyMMddHHmmssSSS, UTC).
func FormatStatisticalTime(t time.Time) string {
	t = t.UTC()
	return t.Format(layoutSeconds) + fmt.Sprintf("%03d", t.Nanosecond()/int(time.Millisecond))
}

// ParseTimestamp parses a request timestamp: 13-digit Unix milliseconds as every example shows,
// or 10-digit Unix seconds as some translated pages say.
func ParseTimestamp(s string) (time.Time, error) {
	if !isDigits(s) || (len(s) != 13 && len(s) != 10) {
		return time.Time{}, paramError(KindBadTimestamp, "timestamp must be 13-digit milliseconds or 10-digit seconds")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, paramError(KindBadTimestamp, "timestamp is not a number")
	}
	if len(s) == 10 {
		return time.Unix(n, 0), nil
	}
	return time.UnixMilli(n), nil
}

// Timestamp formats t as a 13-digit millisecond request timestamp.
func Timestamp(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

package koogallery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"unicode/utf8"
)

// Reply is the body every activity answers with.
type Reply struct {
	ResultCode string `json:"resultCode"`
	ResultMsg  string `json:"resultMsg,omitempty"`
}

// NewInstanceReply answers newInstance.
type NewInstanceReply struct {
	Reply
	InstanceID string `json:"instanceId"`
}

// EncryptType says how appInfo credentials are encrypted (§3); empty means plain, the V2 default.
type EncryptType string

// Encryption types of §3.
const (
	EncryptNone   EncryptType = ""
	EncryptAES256 EncryptType = "1"
	EncryptAES128 EncryptType = "2"
)

// QueryInstanceReply answers queryInstance.
type QueryInstanceReply struct {
	Reply
	Info        []InstanceInfo `json:"info,omitempty"`
	EncryptType EncryptType    `json:"encryptType,omitempty"`
}

// InstanceInfo describes one queried instance; AppInfo is nil while it is not ready.
type InstanceInfo struct {
	InstanceID string      `json:"instanceId"`
	AppInfo    *AppInfo    `json:"appInfo,omitempty"`
	UsageInfo  []UsageInfo `json:"usageInfo,omitempty"`
}

// AppInfo is what the buyer sees to reach the service.
type AppInfo struct {
	FrontEndURL string `json:"frontEndUrl"`
	AdminURL    string `json:"adminUrl,omitempty"`
	UserName    string `json:"userName,omitempty"`
	Password    string `json:"password,omitempty"`
	Memo        string `json:"memo,omitempty"`
}

// UsageInfo is the usage of a pay-per-use instance. StatisticalTime is yyyyMMddHHmmssSSS UTC
// (FormatStatisticalTime).
type UsageInfo struct {
	RelatedInstanceID string  `json:"relatedInstanceId,omitempty"`
	UsageValue        float64 `json:"usageValue"`
	StatisticalTime   string  `json:"statisticalTime"`
	DashboardURL      string  `json:"dashboardUrl,omitempty"`
}

// Reply field limits (§1.2).
const (
	maxURL      = 512
	maxUserName = 128
	maxPassword = 128
	maxMemo     = 1024
	maxMsg      = 255
)

// Validate checks the lengths KooGallery's checker enforces. UserName and Password are measured
// as sent, that is after encryption when they are encrypted.
func (a *AppInfo) Validate() error {
	var c checker
	c.required("frontEndUrl", a.FrontEndURL, maxURL)
	c.optional("adminUrl", a.AdminURL, maxURL)
	c.optional("userName", a.UserName, maxUserName)
	c.optional("password", a.Password, maxPassword)
	c.optional("memo", a.Memo, maxMemo)
	return c.err
}

// NewReply returns the reply for err: success for nil, else the error's result code and a
// message safe to show (an *Error's reason, or a fixed text for anything else).
func NewReply(err error) Reply {
	code := CodeOf(err)
	switch {
	case err == nil:
		return Reply{ResultCode: code, ResultMsg: "success"}
	case code == ResultInternalError && KindOf(err) == "":
		return Reply{ResultCode: code, ResultMsg: "internal error"}
	}
	msg := err.Error()
	if utf8.RuneCountInString(msg) > maxMsg {
		msg = string([]rune(msg)[:maxMsg])
	}
	return Reply{ResultCode: code, ResultMsg: msg}
}

// MarshalReply encodes a reply as KooGallery expects: compact JSON with every non-ASCII
// character written as a \uXXXX escape (the documented form for Chinese text in memo), and no
// HTML escaping.
func MarshalReply(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding reply: %w", err)
	}
	return escapeNonASCII(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// escapeNonASCII rewrites non-ASCII runes as \uXXXX (surrogate pairs above U+FFFF). In encoded
// JSON they can only occur inside strings, where the escape means the same text.
func escapeNonASCII(b []byte) []byte {
	const hexLower = "0123456789abcdef"
	i := 0
	for i < len(b) && b[i] < utf8.RuneSelf {
		i++
	}
	if i == len(b) {
		return b
	}
	out := make([]byte, i, len(b)+len(b)/2)
	copy(out, b[:i])
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		i += size
		if r < utf8.RuneSelf {
			out = append(out, byte(r)) //nolint:gosec // r < utf8.RuneSelf (0x80) here
			continue
		}
		units := []rune{r}
		if r > 0xFFFF {
			r -= 0x10000
			units = []rune{0xD800 + (r>>10)&0x3FF, 0xDC00 + r&0x3FF}
		}
		for _, u := range units {
			out = append(out, '\\', 'u', hexLower[u>>12&0xF], hexLower[u>>8&0xF], hexLower[u>>4&0xF], hexLower[u&0xF])
		}
	}
	return out
}

// WriteReply writes v as the reply to a KooGallery call: HTTP 200 (any other status is a
// failure to KooGallery), application/json, and the Body-Sign header made with key over the
// exact body bytes.
func WriteReply(w http.ResponseWriter, key []byte, v any) error {
	body, err := MarshalReply(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h[HeaderBodySign] = []string{BodySign(key, body)}
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("writing reply: %w", err)
	}
	return nil
}

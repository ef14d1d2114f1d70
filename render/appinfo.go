package render

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/marketplace-operator/marketplace-operator/api/v1alpha1"
)

// MaxURLLength is the longest URL KooGallery accepts in appInfo.
const MaxURLLength = 512

// AppInfo renders the buyer-facing URLs. frontEndUrl is required, adminUrl optional (an empty
// template, or one that renders empty, leaves it out). Surrounding whitespace is trimmed
// because YAML block scalars add a newline nobody means.
func AppInfo(inst *v1alpha1.MarketplaceInstance, plan *v1alpha1.MarketplacePlan) (v1alpha1.AppInfo, error) {
	data := NewTemplateData(inst, plan)
	frontEnd, frontErr := renderURL(frontEndURLTemplate, plan.Spec.AppInfo.FrontEndURL, data, true)
	admin, adminErr := renderURL(adminURLTemplate, plan.Spec.AppInfo.AdminURL, data, false)
	memo, memoErr := renderMemo(plan.Spec.AppInfo.Memo, data)
	if err := errors.Join(frontErr, adminErr, memoErr); err != nil {
		return v1alpha1.AppInfo{}, err
	}
	return v1alpha1.AppInfo{FrontEndURL: frontEnd, AdminURL: admin, Memo: memo}, nil
}

// MaxMemoLength is KooGallery's limit on memo, counted as sent: every non-ASCII character is
// written as a 6-character \uXXXX escape (two for a character outside the BMP).
const MaxMemoLength = 1024

// renderMemo renders the buyer instructions and checks they fit KooGallery's limit once escaped.
func renderMemo(text string, data TemplateData) (string, error) {
	if text == "" {
		return "", nil
	}
	rendered, err := renderText(memoTemplate, text, data)
	if err != nil {
		return "", &TemplateError{Template: memoTemplate, Err: err}
	}
	memo := strings.TrimSpace(string(rendered))
	if n := escapedLength(memo); n > MaxMemoLength {
		return "", &TemplateError{Template: memoTemplate, Err: fmt.Errorf("%w: renders %d characters once non-ASCII is escaped, KooGallery allows %d", ErrTooLong, n, MaxMemoLength)}
	}
	return memo, nil
}

// escapedLength is the length of s in a KooGallery reply, where non-ASCII is \uXXXX-escaped.
func escapedLength(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			n++
		case r > 0xFFFF:
			n += 12
		default:
			n += 6
		}
	}
	return n
}

// renderURL renders and checks one URL template.
func renderURL(name, text string, data TemplateData, required bool) (string, error) {
	rendered, err := renderText(name, text, data)
	if err != nil {
		return "", &TemplateError{Template: name, Err: err}
	}
	u := strings.TrimSpace(string(rendered))
	if u == "" {
		if required {
			return "", &TemplateError{Template: name, Err: fmt.Errorf("%w: renders empty", ErrInvalidURL)}
		}
		return "", nil
	}
	if err := checkURL(u); err != nil {
		return "", &TemplateError{Template: name, Err: err}
	}
	return u, nil
}

// checkURL accepts what KooGallery can show the buyer as a link: an absolute http or https URL
// with a host, no credentials, at most MaxURLLength characters.
func checkURL(s string) error {
	if n := utf8.RuneCountInString(s); n > MaxURLLength {
		return fmt.Errorf("%w: renders %d characters, KooGallery allows %d", ErrInvalidURL, n, MaxURLLength)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: %q does not parse as a URL", ErrInvalidURL, s)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%w: %q is not an absolute http(s) URL", ErrInvalidURL, s)
	}
	if u.User != nil {
		// Not quoted: the user info may be a password.
		return fmt.Errorf("%w: must not carry credentials; they belong in the credentials Secret", ErrInvalidURL)
	}
	return nil
}

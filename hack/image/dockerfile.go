package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// runtimeStage is what the Dockerfile's last stage sets on the image: what a built image must
// carry too.
type runtimeStage struct {
	user       string
	entrypoint []string
	labels     []string // keys only: the values are build arguments
}

// parseDockerfile reads the last stage of a Dockerfile. It knows the instructions this
// repository's Dockerfile uses; a form it does not read (ENTRYPOINT in shell form, a second
// USER) is an error rather than a guess.
func parseDockerfile(text string) (runtimeStage, error) {
	var (
		st    runtimeStage
		lines []string
		cur   strings.Builder
	)
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if more, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(trimmed)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	last := -1
	for i, l := range lines {
		if strings.EqualFold(instruction(l), "FROM") {
			last = i
		}
	}
	if last < 0 {
		return st, errors.New("no FROM")
	}
	for _, l := range lines[last+1:] {
		args := strings.TrimSpace(l[len(instruction(l)):])
		switch strings.ToUpper(instruction(l)) {
		case "USER":
			if st.user != "" {
				return st, errors.New("more than one USER in the last stage")
			}
			st.user = args
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(args), &st.entrypoint); err != nil {
				return st, fmt.Errorf("ENTRYPOINT must be in exec (JSON) form: %w", err)
			}
		case "LABEL":
			keys, err := labelKeys(args)
			if err != nil {
				return st, err
			}
			st.labels = append(st.labels, keys...)
		}
	}
	if st.user == "" || len(st.entrypoint) == 0 {
		return st, errors.New("the last stage must set USER and ENTRYPOINT")
	}
	return st, nil
}

func instruction(line string) string {
	word, _, _ := strings.Cut(line, " ")
	return word
}

// labelKeys reads the keys of LABEL key=value ..., values possibly double-quoted.
func labelKeys(args string) ([]string, error) {
	var keys []string
	for rest := strings.TrimSpace(args); rest != ""; rest = strings.TrimSpace(rest) {
		key, value, ok := strings.Cut(rest, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("LABEL %s: not key=value pairs", args)
		}
		keys = append(keys, key)
		if strings.HasPrefix(value, `"`) {
			end := strings.Index(value[1:], `"`)
			if end < 0 {
				return nil, fmt.Errorf("LABEL %s: unterminated quote", args)
			}
			rest = value[end+2:]
		} else {
			_, rest, _ = strings.Cut(value, " ")
		}
	}
	return keys, nil
}

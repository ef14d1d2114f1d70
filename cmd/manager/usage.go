package main

import (
	"context"
	"errors"

	"github.com/marketplace-operator/marketplace-operator/koogallery/openapi"
)

// usagePusher signs each usage push with the current basic-interface key (the usage API's key),
// so a rotated key is used without a restart.
type usagePusher struct {
	cfg  openapi.Config
	keys func() [][]byte
}

func (p usagePusher) PushUsage(ctx context.Context, records []openapi.UsageRecord) error {
	keys := p.keys()
	if len(keys) == 0 || len(keys[0]) == 0 {
		return errors.New("push usage: no basic-interface key is configured")
	}
	cfg := p.cfg
	cfg.UsageKey = keys[0]
	c, err := openapi.NewClient(cfg)
	if err != nil {
		return err
	}
	return c.PushUsage(ctx, records)
}

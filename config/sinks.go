// SPDX-License-Identifier: Apache-2.0

package config

// Every sink kind the daemon ships registers itself from init; importing
// them here makes [[sink.<kind>]] work wherever the config is loaded.
import (
	_ "github.com/execfaild/execfaild/notify/alertmanager"
	_ "github.com/execfaild/execfaild/notify/file"
	_ "github.com/execfaild/execfaild/notify/journal"
	_ "github.com/execfaild/execfaild/notify/slack"
	_ "github.com/execfaild/execfaild/notify/syslog"
	_ "github.com/execfaild/execfaild/notify/webhook"
)

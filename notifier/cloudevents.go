package notifier

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// cloudEvent is a CloudEvents 1.0 event in structured mode
// (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md),
// the attributes regscribe reads.
type cloudEvent struct {
	SpecVersion string          `json:"specversion"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Data        json.RawMessage `json:"data"`
	DataBase64  string          `json:"data_base64"`
}

// decodeCloudEvent reads a structured-mode CloudEvent and returns its type,
// its id (which, with its source, identifies the event: a sender delivering
// it again keeps it) and its data.
func decodeCloudEvent(body []byte) (typ, id string, data []byte, err error) {
	var ce cloudEvent
	if err := json.Unmarshal(body, &ce); err != nil {
		return "", "", nil, fmt.Errorf("body is not a CloudEvent: %s", jsonError(err))
	}
	switch {
	case ce.SpecVersion == "":
		return "", "", nil, errors.New(`CloudEvent has no "specversion"`)
	case ce.Type == "":
		return "", "", nil, errors.New(`CloudEvent has no "type"`)
	}
	data = ce.Data
	if ce.DataBase64 != "" {
		if data, err = base64.StdEncoding.DecodeString(ce.DataBase64); err != nil {
			return "", "", nil, fmt.Errorf("CloudEvent data_base64: %v", err)
		}
	}
	if len(bytes.TrimSpace(data)) == 0 || bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		data = nil
	}
	return ce.Type, ce.ID, data, nil
}

package protocols

// KafkaRecord is the record of one Kafka request and its response.
type KafkaRecord struct {
	APIKey        int16  `json:"api_key"`
	API           string `json:"api"`
	APIVersion    int16  `json:"api_version"`
	CorrelationID int32  `json:"correlation_id"`
	ClientID      string `json:"client_id,omitempty"`
}

-- Token batches (docs/architecture.md §7a, §9b): every token request (one device or a batch) makes one batch, named by a
-- UUID returned with the tokens. The device records the batch of the token it enrolled with (of its last enrollment, as
-- its group), so a batch found bad later is revoked by that id, and the fleet search filters by it.
ALTER TABLE bootstrap_tokens ADD COLUMN batch_id uuid;
ALTER TABLE devices ADD COLUMN token_batch uuid;
CREATE INDEX devices_token_batch ON devices (token_batch) WHERE token_batch IS NOT NULL;

-- What GET /v1/certificates shows of a certificate, read from its leaf once when it is written.
ALTER TABLE certificates
    ADD COLUMN subject    text        NOT NULL DEFAULT '',
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

//! Rows in PostgreSQL's binary `COPY` format, for `COPY ... FROM STDIN
//! (FORMAT binary)`.
//!
//! Hand-written because sqlx streams `COPY` data but has no encoder for it
//! (tokio-postgres's `BinaryCopyInWriter` is bound to its own client), and
//! the format of the four types used here is a few lines each: the server
//! then parses no text for the integers and timestamps, which is most of
//! what a text `COPY` of these rows would cost it.

use chrono::{DateTime, Utc};

/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01 UTC.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A binary `COPY` stream being written: the header, then rows.
pub(crate) struct BinaryCopy {
    buffer: Vec<u8>,
}

impl BinaryCopy {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        let mut buffer = Vec::with_capacity(bytes.max(32));
        buffer.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        // Flags (no OIDs), then the length of the (empty) header extension.
        buffer.extend_from_slice(&0_i32.to_be_bytes());
        buffer.extend_from_slice(&0_i32.to_be_bytes());
        BinaryCopy { buffer }
    }

    /// Starts a row of `fields` columns; the caller then writes exactly
    /// that many fields.
    pub(crate) fn row(&mut self, fields: i16) {
        self.buffer.extend_from_slice(&fields.to_be_bytes());
    }

    pub(crate) fn text(&mut self, value: &str) {
        self.field(value.as_bytes());
    }

    pub(crate) fn bigint(&mut self, value: i64) {
        self.field(&value.to_be_bytes());
    }

    pub(crate) fn timestamptz(&mut self, value: DateTime<Utc>) {
        self.bigint(value.timestamp_micros() - POSTGRES_EPOCH_MICROS);
    }

    /// A `jsonb` field: format version 1, then the JSON text.
    pub(crate) fn jsonb(&mut self, json: &[u8]) {
        // A field longer than 2 GiB cannot be sent anyway; the server
        // refuses the stream rather than reading a wrong length.
        let length = i32::try_from(json.len() + 1).unwrap_or(-1);
        self.buffer.extend_from_slice(&length.to_be_bytes());
        self.buffer.push(1);
        self.buffer.extend_from_slice(json);
    }

    /// The stream with its trailer.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buffer.extend_from_slice(&(-1_i16).to_be_bytes());
        self.buffer
    }

    fn field(&mut self, bytes: &[u8]) {
        let length = i32::try_from(bytes.len()).unwrap_or(-1);
        self.buffer.extend_from_slice(&length.to_be_bytes());
        self.buffer.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_framed_as_the_server_reads_them() {
        let mut copy = BinaryCopy::with_capacity(0);
        copy.row(3);
        copy.text("ab");
        copy.bigint(-2);
        copy.jsonb(b"[1]");
        let bytes = copy.finish();
        let mut expected = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        expected.extend_from_slice(&[0, 3]);
        expected.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
        expected.extend_from_slice(&[0, 0, 0, 8, 255, 255, 255, 255, 255, 255, 255, 254]);
        expected.extend_from_slice(&[0, 0, 0, 4, 1, b'[', b'1', b']']);
        expected.extend_from_slice(&[255, 255]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn timestamps_count_from_2000() {
        let mut copy = BinaryCopy::with_capacity(0);
        let at = DateTime::parse_from_rfc3339("2000-01-01T00:00:01Z")
            .expect("time")
            .with_timezone(&Utc);
        copy.timestamptz(at);
        let bytes = copy.finish();
        assert_eq!(
            &bytes[19..31],
            &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40]
        );
    }
}

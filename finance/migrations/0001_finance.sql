-- Finance's own schema (database per service: it never reads orderstream's
-- tables, only the integration events published on the broker).

-- Chart of accounts: the rules book only into these codes.
CREATE TABLE accounts (
    code text PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('asset', 'liability', 'equity', 'revenue', 'expense'))
);

INSERT INTO accounts (code, name, kind) VALUES
    ('1000', 'Cash', 'asset'),
    ('1200', 'Accounts Receivable', 'asset'),
    ('4000', 'Sales Revenue', 'revenue'),
    ('6100', 'Bad Debt Expense', 'expense');

-- Idempotent consumer: one row per message id ever handled, written in the
-- same transaction as its journal entry, so a redelivery finds it and books
-- nothing. Ignored contracts get a row too (outcome = 'ignored').
CREATE TABLE inbox (
    message_id text PRIMARY KEY,
    contract text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('booked', 'ignored')),
    processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE journal_entries (
    entry_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text NOT NULL UNIQUE REFERENCES inbox (message_id),
    contract text NOT NULL,
    order_id text NOT NULL,
    currency text NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    description text NOT NULL
);

CREATE TABLE journal_lines (
    entry_id bigint NOT NULL REFERENCES journal_entries (entry_id),
    line_no smallint NOT NULL,
    account text NOT NULL REFERENCES accounts (code),
    debit numeric NOT NULL DEFAULT 0 CHECK (debit >= 0),
    credit numeric NOT NULL DEFAULT 0 CHECK (credit >= 0),
    -- A line is a debit or a credit, never both or neither.
    CHECK ((debit = 0) <> (credit = 0)),
    PRIMARY KEY (entry_id, line_no)
);

CREATE INDEX journal_lines_account ON journal_lines (account);

-- Double entry enforced by the database, not only by the code that writes:
-- at commit every entry touched has debits = credits.
CREATE FUNCTION journal_entry_balances() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    debits numeric;
    credits numeric;
BEGIN
    SELECT coalesce(sum(debit), 0), coalesce(sum(credit), 0)
      INTO debits, credits
      FROM journal_lines WHERE entry_id = NEW.entry_id;
    IF debits <> credits THEN
        RAISE EXCEPTION 'journal entry % does not balance: debits % <> credits %',
            NEW.entry_id, debits, credits;
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER journal_lines_balance
    AFTER INSERT OR UPDATE ON journal_lines
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_entry_balances();

-- The journal is append-only: corrections are new entries.
CREATE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only';
END
$$;

CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION journal_append_only();
CREATE TRIGGER journal_lines_append_only BEFORE UPDATE OR DELETE ON journal_lines
    FOR EACH ROW EXECUTE FUNCTION journal_append_only();

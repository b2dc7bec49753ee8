-- The billing platform's side of the demo stack: different column names (email,
-- name) and key column (cust_id) from the CRM, and its own last-write clock,
-- updated_at, which concord compares for last-write-wins (systems.billing.timestamp)
-- and never syncs. Run once by the postgres image on an empty data directory.
CREATE TABLE public.customers (
    cust_id        text PRIMARY KEY,
    email          text,
    name           text,
    payment_status text,
    notes          text,
    phone          text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- The origin marker: the JDBC sink writes the event id of the apply it writes
    -- here, so concord knows its own writes for certain (systems.billing.origin_marker).
    concord_event  text
);

-- Every change that alters the row moves updated_at, whoever writes it (the billing
-- application or the JDBC sink applying concord's decisions), so the column is the
-- row's own clock. An update that changes nothing keeps the old time.
CREATE FUNCTION public.customers_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER customers_touch_updated_at
    BEFORE UPDATE ON public.customers
    FOR EACH ROW EXECUTE FUNCTION public.customers_touch_updated_at();

-- The marker names the apply a row was last written by only while that is true: an
-- update that does not set concord_event to a new value (a user's edit, which never
-- names it) clears it. So a JDBC sink that writes an older apply again after a
-- restart (at-least-once delivery) puts an id back that the row no longer shows, and
-- concord knows the rewrite for certain and repairs what it overwrote, where with
-- the marker left as it was such a rewrite cannot be told from an edit setting the
-- same values back (it would go to review as possible_redelivery). The name sorts
-- first: PostgreSQL fires BEFORE triggers in name order.
CREATE FUNCTION public.customers_clear_marker() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.concord_event IS NOT DISTINCT FROM OLD.concord_event THEN
        NEW.concord_event := NULL;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER customers_a_clear_marker
    BEFORE UPDATE ON public.customers
    FOR EACH ROW EXECUTE FUNCTION public.customers_clear_marker();

INSERT INTO public.customers (cust_id, email, name, payment_status, notes, phone) VALUES
    ('c-2001', 'cy@example.com', 'Cy Park', 'current', 'annual plan', '+44 20 7946 0101');

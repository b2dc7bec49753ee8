-- The CRM's side of the demo stack: its own column names (email_address, full_name)
-- and key column (id). Run once by the postgres image on an empty data directory.
--
-- payment_status is owned by billing (authority in deploy/concord/concord.yaml) and
-- kept here as a read-only copy: concord sends every synced field to every system,
-- and the JDBC sink runs with schema.evolution=none, so each system's table needs a
-- column for every canonical field it can receive.
CREATE TABLE public.contacts (
    id             text PRIMARY KEY,
    email_address  text,
    full_name      text,
    notes          text,
    phone          text,
    payment_status text,
    -- The origin marker: the JDBC sink writes the event id of the apply it writes
    -- here, so concord knows its own writes for certain (systems.crm.origin_marker).
    concord_event  text
);

-- Debezium's update and delete events carry the whole previous row, so concord can
-- tell which columns a change touched without relying on the image it saw last.
ALTER TABLE public.contacts REPLICA IDENTITY FULL;

-- The marker names the apply a row was last written by only while that is true: an
-- update that does not set concord_event to a new value (a user's edit, which never
-- names it) clears it. So a JDBC sink that writes an older apply again after a
-- restart (at-least-once delivery) puts an id back that the row no longer shows, and
-- concord knows the rewrite for certain and repairs what it overwrote, where with
-- the marker left as it was such a rewrite cannot be told from an edit setting the
-- same values back (it would go to review as possible_redelivery). The name sorts
-- first: PostgreSQL fires BEFORE triggers in name order.
CREATE FUNCTION public.contacts_clear_marker() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.concord_event IS NOT DISTINCT FROM OLD.concord_event THEN
        NEW.concord_event := NULL;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER contacts_a_clear_marker
    BEFORE UPDATE ON public.contacts
    FOR EACH ROW EXECUTE FUNCTION public.contacts_clear_marker();

INSERT INTO public.contacts (id, email_address, full_name, notes, phone) VALUES
    ('c-1001', 'ann@example.com', 'Ann Lee', 'met at the spring fair', '+44 20 7946 0001'),
    ('c-1002', 'bo@example.com', 'Bo Chen', NULL, '+44 20 7946 0002');

-- Approving power is given by two people once two can give it.
--
-- A platform admin who adds an operator as approver or platform_admin, or grants one of those
-- roles, opens a grant; while another enrolled platform admin exists, the role is given only when
-- one of them confirms it (not the admin who asked, not the operator who receives it). A platform
-- admin who is the only enrolled one has nobody to ask: their grant applies at once and says so
-- ('sole_admin'); the very first operator's roles are 'first'.
--
-- The database holds the application to this: a privileged role appears on an operator (insert or
-- update) only in the transaction that applied a grant row for it, checked at commit.

CREATE TABLE IF NOT EXISTS operator_grants (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operator     text NOT NULL REFERENCES operators(name) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('platform_admin', 'approver')),
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'confirmed', 'refused', 'expired', 'sole_admin', 'first')),
    decided_by   text REFERENCES operators(name),
    decided_at   timestamptz,
    applied_in   bigint,
    CONSTRAINT operator_grants_two_people CHECK (
        status <> 'confirmed'
        OR (decided_by IS NOT NULL AND decided_by <> requested_by AND decided_by <> operator))
);
CREATE INDEX IF NOT EXISTS operator_grants_pending ON operator_grants (operator, role) WHERE status = 'pending';

CREATE OR REPLACE FUNCTION operators_privileged_roles_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['platform_admin', 'approver'] LOOP
        IF r = ANY(NEW.roles) AND (TG_OP = 'INSERT' OR NOT (r = ANY(OLD.roles))) THEN
            IF NOT EXISTS (SELECT 1 FROM operator_grants g
                            WHERE g.operator = NEW.name AND g.role = r
                              AND g.status IN ('confirmed', 'sole_admin', 'first')
                              AND g.applied_in = txid_current()) THEN
                RAISE EXCEPTION 'operator % may get role % only through a grant (arrakis operators grant)', NEW.name, r
                    USING ERRCODE = 'check_violation', CONSTRAINT = 'operators_roles_by_grant';
            END IF;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS operators_roles_by_grant ON operators;
CREATE CONSTRAINT TRIGGER operators_roles_by_grant AFTER INSERT OR UPDATE OF roles ON operators
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION operators_privileged_roles_check();

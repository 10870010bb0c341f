-- A password sign-in whose single access token lasts a day and is not refreshed: BigID's
-- `POST /api/v1/sessions` (the token is then sent as a bare `Authorization` header).
ALTER TABLE grants DROP CONSTRAINT grants_kind_check;
ALTER TABLE grants ADD CONSTRAINT grants_kind_check
    CHECK (kind IN ('session', 'token', 'device', 'exchange', 'user_token', 'api_session'));

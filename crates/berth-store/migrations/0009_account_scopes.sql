-- One's own account (GET/PATCH /api/v1/users/{self}) now needs the account:read and
-- account:write scopes, which every user holds. Credentials that carried every permission a
-- user holds (created without a scope list) keep that: they get the new scopes too; narrowed
-- ones do not. The CLI may ask for them.
UPDATE clients SET scopes = scopes || ARRAY['account:read', 'account:write']
WHERE client_id = 'berth-cli'
   OR scopes @> ARRAY['projects:create', 'api_keys:read', 'api_keys:write', 'clients:read',
                      'clients:write'];
UPDATE api_keys SET scopes = scopes || ARRAY['account:read', 'account:write']
WHERE scopes @> ARRAY['projects:create', 'api_keys:read', 'api_keys:write', 'clients:read',
                      'clients:write'];
UPDATE grants SET scopes = scopes || ARRAY['account:read', 'account:write']
WHERE scopes @> ARRAY['projects:create', 'api_keys:read', 'api_keys:write', 'clients:read',
                      'clients:write'];

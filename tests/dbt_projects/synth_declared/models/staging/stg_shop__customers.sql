select
    customer_id,
    lower(email) as email,
    first_name,
    last_name,
    first_name || ' ' || last_name as full_name,
    country_code,
    created_at
from {{ source('shop', 'customers') }}

select
    store_id,
    store_name,
    region_id,
    opened_on
from {{ source('retail', 'stores') }}

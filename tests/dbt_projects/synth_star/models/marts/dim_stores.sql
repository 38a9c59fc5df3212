select
    s.store_id,
    s.store_name,
    s.opened_on,
    s.region_id,
    r.region_name
from {{ ref('stg_retail__stores') }} as s
left join {{ source('retail', 'regions') }} as r on r.region_id = s.region_id

select
    p.product_id,
    p.product_name,
    p.list_price,
    p.category_id,
    c.category_name
from {{ ref('stg_retail__products') }} as p
left join {{ source('retail', 'categories') }} as c on c.category_id = p.category_id

with

source as (

    select * from {{ source('shop', 'products') }}

),

renamed as (

    select

        ----------  ids
        id as product_id,

        ---------- text
        name as product_name,
        category,

        ---------- numerics (cents in the source)
        price / 100.0 as unit_price,

        ---------- booleans
        cast(is_active as boolean) as is_active

    from source

)

select * from renamed

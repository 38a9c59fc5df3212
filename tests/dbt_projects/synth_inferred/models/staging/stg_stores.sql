with

source as (

    select * from {{ source('ecom', 'raw_stores') }}

),

renamed as (

    select

        ----------  ids
        id as store_id,

        ---------- text
        name as store_name,

        ---------- numerics
        cast(tax_rate as double) as tax_rate,

        ---------- timestamps
        cast(opened_at as timestamp) as opened_at

    from source

)

select * from renamed
